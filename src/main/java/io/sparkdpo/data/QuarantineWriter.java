package io.sparkdpo.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;

/**
 * Writes quarantined rows as JSON lines with a fixed key order: {@code source_file}, {@code source_row},
 * {@code reason}, {@code field}, {@code detail}, {@code raw}, and {@code raw_base64} when the bytes were not
 * valid UTF-8. The file is created on the first row, so a clean input leaves no empty files.
 */
final class QuarantineWriter implements Closeable {
  private static final ObjectMapper LINES = new ObjectMapper(); // keeps the map's key order
  private final String path;
  private final Configuration conf;
  private final Map<String, Long> reasons = new TreeMap<>();
  private OutputStream out;
  private long rows;

  QuarantineWriter(String path, Configuration conf) {
    this.path = path;
    this.conf = conf;
  }

  void write(QuarantineRecord q) throws IOException {
    if (out == null) {
      out = new BufferedOutputStream(OutputFiles.create(path, conf), 1 << 16);
    }
    Map<String, Object> line = new LinkedHashMap<>();
    line.put("source_file", q.sourceFile());
    line.put("source_row", q.sourceRow());
    line.put("reason", q.reason());
    line.put("field", q.field());
    line.put("detail", q.detail());
    line.put("raw", q.raw());
    if (q.rawBase64() != null) {
      line.put("raw_base64", q.rawBase64());
    }
    out.write(LINES.writeValueAsBytes(line));
    out.write('\n');
    rows++;
    reasons.merge(q.reason(), 1L, Long::sum);
  }

  long rows() {
    return rows;
  }

  Map<String, Long> reasons() {
    return reasons;
  }

  @Override
  public void close() throws IOException {
    if (out != null) {
      out.close();
    }
  }
}
