package io.sparkdpo.data;

import com.fasterxml.jackson.core.JsonGenerator;
import io.sparkdpo.io.Json;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.DecimalVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.FixedSizeBinaryVector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.LargeVarBinaryVector;
import org.apache.arrow.vector.LargeVarCharVector;
import org.apache.arrow.vector.UInt8Vector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarBinaryVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.LargeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.MapVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.ipc.ArrowStreamReader;
import org.apache.arrow.vector.types.pojo.Field;

/**
 * The rows of an Arrow IPC file as JSON objects (column name -> value, nulls kept, as prepare renders a Parquet row),
 * numbered from 1 in file order: what Hugging Face {@code datasets} writes ({@code save_to_disk}'s
 * {@code data-00000-of-00001.arrow}, its cache files) is the IPC stream format; the IPC file format (Feather v2)
 * is read too, as its body is that stream after an 8-byte magic. Strings, numbers, booleans, lists, structs and maps
 * map to their JSON forms, binary to base64, anything else (dates, timestamps) to its text. A row whose JSON exceeds
 * maxRowBytes is kept only up to that size and comes out as {@link RawRecord#tooLarge}. Closes the stream and frees
 * Arrow's off-heap buffers at the end (or on {@link #close}).
 */
final class ArrowStreamRows extends Lookahead<RawRecord> implements AutoCloseable {
  private static final byte[] FILE_MAGIC = "ARROW1".getBytes(StandardCharsets.US_ASCII);

  private final String file;
  private final long maxRowBytes;
  private final BufferAllocator allocator;
  private final ArrowStreamReader reader;
  private final VectorSchemaRoot root;
  private int batchRow;
  private long row;
  private boolean closed;

  ArrowStreamRows(String file, InputStream in, long maxRowBytes) throws IOException {
    this.file = file;
    this.maxRowBytes = maxRowBytes;
    BufferedInputStream buffered = new BufferedInputStream(in);
    skipFileMagic(buffered);
    this.allocator = new RootAllocator(Long.MAX_VALUE);
    try {
      this.reader = new ArrowStreamReader(buffered, allocator);
      this.root = reader.getVectorSchemaRoot();
      for (Field f : root.getSchema().getFields()) {
        if (f.getDictionary() != null) {
          throw new IllegalArgumentException("Arrow file " + file + ": column '" + f.getName() + "' is "
              + "dictionary-encoded, which prepare does not read (datasets never writes it); decode it first");
        }
      }
    } catch (IOException | RuntimeException e) {
      allocator.close();
      in.close();
      throw e;
    }
  }

  /** The IPC file format starts with "ARROW1" and two bytes of padding; the stream format with a message. */
  private static void skipFileMagic(BufferedInputStream in) throws IOException {
    in.mark(8);
    byte[] head = in.readNBytes(8);
    if (head.length < 8 || !Arrays.equals(Arrays.copyOf(head, 6), FILE_MAGIC)) {
      in.reset();
    }
  }

  @Override
  protected RawRecord advance() {
    try {
      while (!closed && batchRow >= root.getRowCount()) {
        if (!reader.loadNextBatch()) {
          close();
        }
        batchRow = 0;
      }
      if (closed) {
        return null;
      }
      row++;
      CappedBytes out = new CappedBytes(maxRowBytes);
      try (JsonGenerator g = Json.MAPPER.getFactory().createGenerator(out)) {
        g.writeStartObject();
        for (FieldVector v : root.getFieldVectors()) {
          g.writeFieldName(v.getName());
          write(g, v, batchRow);
        }
        g.writeEndObject();
      }
      batchRow++;
      if (out.total > maxRowBytes) {
        return RawRecord.tooLarge(file, row, out.bytes(), out.kept, out.total);
      }
      return new RawRecord(file, row, out.bytes());
    } catch (IOException e) {
      close();
      throw new UncheckedIOException("Arrow file " + file + " cannot be read: " + e.getMessage(), e);
    }
  }

  /** Value {@code i} of {@code v} as JSON. */
  private static void write(JsonGenerator g, ValueVector v, int i) throws IOException {
    if (v.isNull(i)) {
      g.writeNull();
    } else if (v instanceof VarCharVector s) {
      g.writeString(new String(s.get(i), StandardCharsets.UTF_8));
    } else if (v instanceof LargeVarCharVector s) {
      g.writeString(new String(s.get(i), StandardCharsets.UTF_8));
    } else if (v instanceof BitVector b) {
      g.writeBoolean(b.get(i) != 0);
    } else if (v instanceof UInt8Vector u) {
      g.writeNumber(u.getObjectNoOverflow(i));
    } else if (v instanceof BaseIntVector n) {
      g.writeNumber(n.getValueAsLong(i));
    } else if (v instanceof Float4Vector f) {
      g.writeNumber(f.get(i));
    } else if (v instanceof Float8Vector f) {
      g.writeNumber(f.get(i));
    } else if (v instanceof DecimalVector d) {
      g.writeNumber(d.getObject(i));
    } else if (v instanceof VarBinaryVector b) {
      g.writeString(Base64.getEncoder().encodeToString(b.get(i)));
    } else if (v instanceof LargeVarBinaryVector b) {
      g.writeString(Base64.getEncoder().encodeToString(b.get(i)));
    } else if (v instanceof FixedSizeBinaryVector b) {
      g.writeString(Base64.getEncoder().encodeToString(b.get(i)));
    } else if (v instanceof MapVector m) { // before ListVector: a map is a list of {key, value} structs
      StructVector entries = (StructVector) m.getDataVector();
      List<FieldVector> kv = entries.getChildrenFromFields();
      g.writeStartObject();
      for (int j = m.getOffsetBuffer().getInt((long) i * 4); j < m.getOffsetBuffer().getInt((long) (i + 1) * 4); j++) {
        Object key = kv.get(0).getObject(j);
        g.writeFieldName(String.valueOf(key));
        write(g, kv.get(1), j);
      }
      g.writeEndObject();
    } else if (v instanceof ListVector l) {
      g.writeStartArray();
      for (int j = l.getOffsetBuffer().getInt((long) i * 4); j < l.getOffsetBuffer().getInt((long) (i + 1) * 4); j++) {
        write(g, l.getDataVector(), j);
      }
      g.writeEndArray();
    } else if (v instanceof LargeListVector l) {
      g.writeStartArray();
      for (long j = l.getOffsetBuffer().getLong((long) i * 8); j < l.getOffsetBuffer().getLong((long) (i + 1) * 8);
          j++) {
        write(g, l.getDataVector(), Math.toIntExact(j));
      }
      g.writeEndArray();
    } else if (v instanceof FixedSizeListVector l) {
      g.writeStartArray();
      int n = l.getListSize();
      for (int j = i * n; j < (i + 1) * n; j++) {
        write(g, l.getDataVector(), j);
      }
      g.writeEndArray();
    } else if (v instanceof StructVector s) {
      g.writeStartObject();
      for (FieldVector child : s.getChildrenFromFields()) {
        g.writeFieldName(child.getName());
        write(g, child, i);
      }
      g.writeEndObject();
    } else {
      g.writeString(String.valueOf(v.getObject(i))); // dates, times, timestamps, durations: their text
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      reader.close(); // closes the root, the stream and its buffers
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      allocator.close();
    }
  }

  /** Keeps the first {@code cap} bytes written and counts them all, so an over-long row is measured, not held. */
  private static final class CappedBytes extends OutputStream {
    private byte[] buf = new byte[256];
    private int kept;
    private long total;
    private final long cap;

    CappedBytes(long cap) {
      this.cap = cap;
    }

    @Override
    public void write(int b) {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) {
      total += len;
      int keep = (int) Math.max(0, Math.min(len, cap - kept));
      if (keep > 0) {
        if (kept + keep > buf.length) {
          buf = Arrays.copyOf(buf, (int) Math.min(Math.max(buf.length * 2L, kept + keep), cap));
        }
        System.arraycopy(b, off, buf, kept, keep);
        kept += keep;
      }
    }

    byte[] bytes() {
      return Arrays.copyOf(buf, kept);
    }
  }
}
