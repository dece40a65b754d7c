package io.sparkdpo.data;

import io.sparkdpo.config.PrepareSettings.Format;
import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;

/**
 * Everything an executor needs to turn raw rows into prepared rows, decided once on the driver and shipped as
 * one value: tokenizer bytes, template, truncation, EOS and split rules, and each input file's format.
 *
 * @param format the configured format: a concrete one is forced on every row; with {@link Format#AUTO} each row
 *     is read as the format its fields show, and a row that shows none as its file's usual format
 * @param formats input file -> the format most of its first rows show ({@link Format#AUTO} if none could be read)
 * @param maxRowBytes rows larger than this were only measured by the readers: they are quarantined (row_too_large)
 */
public record PrepareSpec(TokenizerFiles tokenizer, TemplateSpec template, Truncation truncation, boolean addEos,
    double evalFraction, long seed, Format format, Map<String, Format> formats, long maxRowBytes)
    implements Serializable {
  public PrepareSpec {
    formats = new TreeMap<>(formats);
  }

  public PrepareSpec(TokenizerFiles tokenizer, TemplateSpec template, Truncation truncation, boolean addEos,
      double evalFraction, long seed, Format format, Map<String, Format> formats) {
    this(tokenizer, template, truncation, addEos, evalFraction, seed, format, formats, 16L << 20);
  }
}
