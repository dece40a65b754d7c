package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.PrepareSettings.Format;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Turns raw rows into outcomes: decode (UTF-8, JSON), parse the file's format, render with the chat template,
 * tokenize (one native batch call per batch of rows), append EOS, truncate and pick the split. Plain Java, so it
 * is tested without Spark; Spark only runs it on each partition.
 */
public final class RowPreparer {
  private final PrepareSpec spec;
  private final TextTokenizer tokenizer;
  private final ChatTemplate template;
  private final int eos;

  public RowPreparer(PrepareSpec spec) {
    this.spec = spec;
    this.tokenizer = TextTokenizer.of(spec.tokenizer());
    this.template = spec.template().template();
    this.eos = spec.addEos() ? tokenizer.eosId() : -1;
  }

  private record Rendered(int index, RawRecord record, String raw, PreferencePair pair, Double margin, String prompt,
      String chosen, String rejected) {}

  /** One outcome per input row, in input order. */
  public List<RowOutcome> prepare(List<RawRecord> batch) {
    RowOutcome[] out = new RowOutcome[batch.size()];
    List<Rendered> rendered = new ArrayList<>(batch.size());
    List<String> texts = new ArrayList<>(3 * batch.size());
    for (int i = 0; i < batch.size(); i++) {
      RawRecord r = batch.get(i);
      if (!r.isWhole()) {
        out[i] = QuarantineRecord.tooLarge(r, spec.maxRowBytes());
        continue;
      }
      byte[] b = r.bytes();
      int off = hasBom(b) ? 3 : 0;
      int len = b.length - off;
      int bad = Utf8.firstInvalid(b, off, len);
      if (bad >= 0) {
        out[i] = QuarantineRecord.invalidUtf8(r, b, off, len, bad);
        continue;
      }
      String raw = new String(b, off, len, StandardCharsets.UTF_8);
      try {
        JsonNode row = JsonRows.parseObject(b, off, len);
        PairFormat format = PairFormat.of(formatOf(r.sourceFile(), row));
        PreferencePair pair = format.parse(row);
        Rendered x = new Rendered(i, r, raw, pair, format.margin(row), template.renderPrompt(pair.prompt()),
            template.renderResponse(pair.prompt(), pair.chosen()),
            template.renderResponse(pair.prompt(), pair.rejected()));
        rendered.add(x);
        texts.add(x.prompt);
        texts.add(x.chosen);
        texts.add(x.rejected);
      } catch (BadRow e) {
        out[i] = QuarantineRecord.of(r, e, raw);
      }
    }
    int[][] ids = tokenizer.encodeBatch(texts);
    for (int k = 0; k < rendered.size(); k++) {
      Rendered x = rendered.get(k);
      try {
        Truncation.Fitted f = spec.truncation().apply(ids[3 * k], withEos(ids[3 * k + 1]), withEos(ids[3 * k + 2]));
        boolean eval = x.pair.promptUnitHash(spec.seed()) < spec.evalFraction();
        out[x.index] = new PreparedRow(x.pair.pairId(), x.record.sourceFile(), x.record.sourceRow(), x.prompt,
            x.chosen, x.rejected, f.prompt(), f.chosen(), f.rejected(), f.truncated(), eval, x.raw, x.margin);
      } catch (BadRow e) {
        out[x.index] = QuarantineRecord.of(x.record, e, x.raw);
      }
    }
    return Arrays.asList(out);
  }

  private Format formatOf(String file, JsonNode row) {
    if (spec.format() != Format.AUTO) {
      return spec.format();
    }
    Format usual = spec.formats().getOrDefault(file, Format.AUTO);
    return FormatDetector.detectRow(row).orElse(usual == Format.AUTO ? Format.TRL : usual);
  }

  private int[] withEos(int[] ids) {
    if (eos < 0) {
      return ids;
    }
    int[] out = Arrays.copyOf(ids, ids.length + 1);
    out[ids.length] = eos;
    return out;
  }

  private static boolean hasBom(byte[] b) {
    return b.length >= 3 && (b[0] & 0xff) == 0xEF && (b[1] & 0xff) == 0xBB && (b[2] & 0xff) == 0xBF;
  }
}
