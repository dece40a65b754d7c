package io.sparkdpo.data;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * A normalised preference pair, whatever the input format: the conversation so far (ending with the turn the
 * model answers) and the preferred and dispreferred assistant responses.
 */
public record PreferencePair(List<Turn> prompt, String chosen, String rejected) implements Serializable {
  public PreferencePair {
    prompt = List.copyOf(prompt);
  }

  /**
   * Builds a pair after the checks every format shares: a prompt with content outside assistant turns, non-blank
   * responses that differ from each other.
   */
  public static PreferencePair checked(List<Turn> prompt, String chosen, String rejected) throws BadRow {
    boolean hasUserContent = prompt.stream()
        .anyMatch(t -> !t.role().equals(Turn.ASSISTANT) && !t.content().isBlank());
    if (!hasUserContent) {
      throw new BadRow(QuarantineReason.EMPTY_PROMPT, "prompt", "the prompt has no non-blank content outside assistant turns");
    }
    if (chosen.isBlank()) {
      throw new BadRow(QuarantineReason.EMPTY_RESPONSE, "chosen", "the chosen response is blank");
    }
    if (rejected.isBlank()) {
      throw new BadRow(QuarantineReason.EMPTY_RESPONSE, "rejected", "the rejected response is blank");
    }
    if (chosen.equals(rejected)) {
      throw new BadRow(QuarantineReason.IDENTICAL_RESPONSES, "chosen",
          "chosen and rejected responses are identical");
    }
    return new PreferencePair(prompt, chosen, rejected);
  }

  /** Stable id: a content hash of prompt, chosen and rejected, so identical pairs share it wherever they come from. */
  public String pairId() {
    MessageDigest md = sha256();
    update(md, "pair");
    updatePrompt(md);
    update(md, chosen);
    update(md, rejected);
    return HexFormat.of().formatHex(md.digest(), 0, 16);
  }

  /**
   * A number in [0, 1) fixed by the prompt alone and the salt: pairs sharing a prompt always land in the same
   * split, and another salt gives another split.
   */
  public double promptUnitHash(long salt) {
    MessageDigest md = sha256();
    update(md, "prompt:" + salt);
    updatePrompt(md);
    byte[] d = md.digest();
    long bits = 0;
    for (int i = 0; i < 8; i++) {
      bits = (bits << 8) | (d[i] & 0xff);
    }
    return (bits >>> 11) * 0x1.0p-53; // top 53 bits: exactly representable, uniform in [0, 1)
  }

  private void updatePrompt(MessageDigest md) {
    update(md, Integer.toString(prompt.size()));
    for (Turn t : prompt) {
      update(md, t.role());
      update(md, t.content());
    }
  }

  /** Length-prefixed, so ("ab","c") and ("a","bc") hash differently. */
  private static void update(MessageDigest md, String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    md.update((byte) (b.length >>> 24));
    md.update((byte) (b.length >>> 16));
    md.update((byte) (b.length >>> 8));
    md.update((byte) b.length);
    md.update(b);
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
