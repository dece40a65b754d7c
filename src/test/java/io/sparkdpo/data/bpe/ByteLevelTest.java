package io.sparkdpo.data.bpe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ByteLevelTest {
  @Test
  void mapsEveryByteToADistinctCharacterAndBack() {
    Set<Character> seen = new HashSet<>();
    for (int b = 0; b < 256; b++) {
      char c = ByteLevel.charOf(b);
      seen.add(c);
      assertEquals(b, ByteLevel.byteOf(c));
    }
    assertEquals(256, seen.size());
  }

  @Test
  void usesGpt2sCharactersForSpaceNewlineAndTheShiftedBytes() {
    assertEquals('\u0120', ByteLevel.charOf(' ')); // 'Ġ'
    assertEquals('\u010A', ByteLevel.charOf('\n')); // 'Ċ'
    assertEquals('\u0100', ByteLevel.charOf(0)); // first shifted byte
    assertEquals('\u0143', ByteLevel.charOf(0xAD)); // soft hyphen, the last shifted byte
    assertEquals('A', ByteLevel.charOf('A'));
    assertEquals('\u00FF', ByteLevel.charOf(0xFF));
    assertEquals(-1, ByteLevel.byteOf('\u0144'));
  }

  @Test
  void encodesUtf8BytesAndDecodesThemBack() {
    String text = "Whale 鯨 حوت 🐋\u00a0\t\r\n";
    String encoded = ByteLevel.encode(text);
    assertEquals(text.getBytes(StandardCharsets.UTF_8).length, encoded.length());
    assertArrayEquals(text.getBytes(StandardCharsets.UTF_8), ByteLevel.decode(encoded));
    assertEquals("WhaleĠé", encoded.substring(0, 7));
  }

  @Test
  void rejectsCharactersOutsideTheByteAlphabet() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ByteLevel.decode("ab\u4e00"));
    assertEquals("not a byte-level character: U+4e00 at 2 in ab\u4e00", e.getMessage());
  }
}
