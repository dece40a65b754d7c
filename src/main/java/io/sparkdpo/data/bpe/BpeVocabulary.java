package io.sparkdpo.data.bpe;

import java.util.List;

/**
 * A trained byte-level BPE vocabulary. {@code tokens.get(id)} is the token with that id: the special tokens first,
 * then the 256 single-byte tokens (in byte order), then one token per merge, in merge order. Tokens other than the
 * specials are byte-level strings (see {@link ByteLevel}).
 */
public record BpeVocabulary(List<String> specials, List<String> tokens, List<Merge> merges) {
  /** One merge rule: adjacent tokens {@code left right} become {@code left + right}. Rank = index in the list. */
  public record Merge(String left, String right) {}

  public BpeVocabulary {
    specials = List.copyOf(specials);
    tokens = List.copyOf(tokens);
    merges = List.copyOf(merges);
  }

  public int size() {
    return tokens.size();
  }

  /** The id of the first single-byte token: byte {@code b} has id {@code firstByteId() + b}. */
  public int firstByteId() {
    return specials.size();
  }
}
