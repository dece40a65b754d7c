package io.sparkdpo.model;

import java.util.Arrays;
import java.util.List;

/**
 * Prompt + response token ids laid out as a right-padded {@code [n, length]} batch for one teacher-forced pass, every
 * id checked against the vocabulary first: an id out of range would otherwise index past the embedding table in
 * native code.
 */
final class PackedIds {
  private PackedIds() {}

  /** Row i holds prompts[i] then responses[i], then {@code pad} up to {@code length}. */
  static int[] pack(List<int[]> prompts, List<int[]> responses, int length, int vocab, int pad) {
    int n = prompts.size();
    int[] ids = new int[n * length];
    if (pad != 0) {
      Arrays.fill(ids, pad);
    }
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      for (int t = 0; t < p.length + r.length; t++) {
        int token = t < p.length ? p[t] : r[t - p.length];
        if (token < 0 || token >= vocab) {
          throw new IllegalArgumentException("sequence " + i + ", " + (t < p.length ? "prompt" : "response")
              + " position " + (t < p.length ? t : t - p.length) + ": token id " + token
              + " is outside the vocabulary of " + vocab);
        }
        ids[i * length + t] = token;
      }
    }
    return ids;
  }
}
