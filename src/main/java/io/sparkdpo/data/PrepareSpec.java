package io.sparkdpo.data;

import io.sparkdpo.config.PrepareSettings.Format;
import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;

/**
 * Everything an executor needs to turn raw rows into prepared rows, decided once on the driver and shipped as
 * one value: tokenizer bytes, template, truncation, EOS and split rules, and each input file's format.
 *
 * @param formats input file -> its format; {@link Format#AUTO} means decide row by row
 */
public record PrepareSpec(TokenizerFiles tokenizer, TemplateSpec template, Truncation truncation, boolean addEos,
    double evalFraction, long seed, Map<String, Format> formats) implements Serializable {
  public PrepareSpec {
    formats = new TreeMap<>(formats);
  }
}
