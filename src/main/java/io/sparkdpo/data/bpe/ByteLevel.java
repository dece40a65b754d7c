package io.sparkdpo.data.bpe;

import java.nio.charset.StandardCharsets;

/**
 * GPT-2's reversible map from the 256 byte values to 256 printable characters, so that byte-level BPE tokens are
 * ordinary strings in tokenizer.json: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
 * space, a few Latin-1 gaps) are shifted to U+0100 upwards (space becomes U+0120 'Ġ', newline U+010A 'Ċ').
 */
public final class ByteLevel {
  private static final char[] BYTE_TO_CHAR = new char[256];
  private static final int[] CHAR_TO_BYTE = new int[0x200];

  static {
    java.util.Arrays.fill(CHAR_TO_BYTE, -1);
    int shifted = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char c = printable ? (char) b : (char) (256 + shifted++);
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  private ByteLevel() {}

  /** The character standing for byte {@code b} (0..255). */
  public static char charOf(int b) {
    return BYTE_TO_CHAR[b & 0xFF];
  }

  /** The byte a byte-level character stands for, or -1 if {@code c} is not one of the 256. */
  public static int byteOf(char c) {
    return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
  }

  /** The byte-level string of {@code text}'s UTF-8 bytes. */
  public static String encode(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    char[] out = new char[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
    }
    return new String(out);
  }

  /** The bytes a byte-level string stands for. */
  public static byte[] decode(String byteLevel) {
    byte[] out = new byte[byteLevel.length()];
    for (int i = 0; i < out.length; i++) {
      int b = byteOf(byteLevel.charAt(i));
      if (b < 0) {
        throw new IllegalArgumentException("not a byte-level character: U+"
            + Integer.toHexString(byteLevel.charAt(i)) + " at " + i + " in " + byteLevel);
      }
      out[i] = (byte) b;
    }
    return out;
  }
}
