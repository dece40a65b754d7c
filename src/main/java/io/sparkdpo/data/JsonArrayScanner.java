package io.sparkdpo.data;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;

/**
 * Streams the elements of a top-level JSON array as raw bytes, one {@link RawRecord} per element, without
 * decoding text: it only tracks brackets, braces and strings (all ASCII), so an element with invalid UTF-8 or
 * broken JSON (a stray or mismatched bracket, a string left open at a line break) is still cut out and quarantined
 * on its own, and the elements after it are read as they are. Whatever follows a structural break (an
 * unterminated string, a missing bracket, text after the array) becomes one last record, so no byte is dropped.
 */
final class JsonArrayScanner extends Lookahead<RawRecord> {
  private enum State { BEFORE_ARRAY, IN_ARRAY, AFTER_ARRAY, DONE }

  private final String file;
  private final InputStream in;
  private final long maxRowBytes;
  private ByteArrayOutputStream element = new ByteArrayOutputStream();
  /** The element's length so far; beyond maxRowBytes its bytes are counted, no longer kept. */
  private long size;
  private byte[] preview;
  private State state = State.BEFORE_ARRAY;
  private boolean afterComma;
  private long index;

  JsonArrayScanner(String file, InputStream in) {
    this(file, in, Integer.MAX_VALUE - 16);
  }

  /** @param maxRowBytes a larger element is measured and returned as its first bytes ({@link RawRecord#tooLarge}) */
  JsonArrayScanner(String file, InputStream in, long maxRowBytes) {
    this.file = file;
    this.in = new BufferedInputStream(in, 1 << 16);
    this.maxRowBytes = maxRowBytes;
  }

  private void reset() {
    element.reset();
    size = 0;
    preview = null;
  }

  /** Appends a byte of the element, or only counts it once the element is larger than maxRowBytes. */
  private void keep(int c) {
    size++;
    if (size <= maxRowBytes) {
      element.write(c);
    } else if (preview == null) {
      preview = Arrays.copyOf(element.toByteArray(), Math.min(element.size(), RawRecord.PREVIEW_BYTES));
      element = new ByteArrayOutputStream(); // let the large buffer go
    }
  }

  /** The next element; closes the input after the last one. */
  @Override
  protected RawRecord advance() {
    try {
      RawRecord r = state == State.DONE ? null : scan();
      if (r == null) {
        in.close();
      }
      return r;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  private RawRecord scan() throws IOException {
    while (true) {
      switch (state) {
        case BEFORE_ARRAY -> {
          int c = skipBom();
          if (c != '[') {
            return rest(c); // not an array after all: the whole file is one bad record
          }
          state = State.IN_ARRAY;
        }
        case AFTER_ARRAY -> {
          return rest(skipWhitespace()); // only whitespace may follow the closing bracket
        }
        case DONE -> {
          return null;
        }
        case IN_ARRAY -> {
          int c = skipWhitespace();
          if (c < 0) {
            state = State.DONE; // unterminated array: every element before the end was already emitted
            return null;
          }
          if (c == ']') {
            state = State.AFTER_ARRAY;
            if (afterComma) {
              reset();
              return record(); // "[1,]": the missing element is a bad record
            }
            continue;
          }
          return element(c);
        }
        default -> throw new IllegalStateException();
      }
    }
  }

  /**
   * One element starting with c, up to the comma or bracket that ends it at depth 0 outside strings. Damage stays
   * inside its element: a closing bracket that closes nothing open is kept as a byte of the element (it cannot end
   * the array or swallow the next elements), one that closes the wrong kind closes back to its own kind if that is
   * open, and a raw line break inside a string (never valid JSON) ends the element there, so a string left open
   * takes at most the rest of its element with it (one more bad record), not the elements after it.
   */
  private RawRecord element(int c) throws IOException {
    reset();
    StringBuilder open = new StringBuilder(); // the brackets open in this element, innermost last
    boolean inString = false;
    for (; c >= 0; c = in.read()) {
      if (inString) {
        keep(c);
        if (c == '\\') {
          int escaped = in.read();
          if (escaped >= 0) {
            keep(escaped);
          }
        } else if (c == '"') {
          inString = false;
        } else if (c == '\n') { // never inside a JSON string: the quote that closes it is missing
          afterComma = true;
          state = State.IN_ARRAY;
          return record();
        }
        continue;
      }
      if (open.isEmpty() && (c == ',' || c == ']')) {
        afterComma = c == ',';
        state = c == ',' ? State.IN_ARRAY : State.AFTER_ARRAY;
        return record();
      }
      if (c == '"') {
        inString = true;
      } else if (c == '{' || c == '[') {
        open.append((char) c);
      } else if (c == '}' || c == ']') {
        int match = open.lastIndexOf(c == '}' ? "{" : "[");
        if (match >= 0) {
          open.setLength(match);
        }
      }
      keep(c);
    }
    state = State.DONE;
    return record();
  }

  private RawRecord record() {
    index++;
    if (preview != null) {
      return RawRecord.tooLarge(file, index, preview, preview.length, size);
    }
    return new RawRecord(file, index, trim(element.toByteArray()));
  }

  private RawRecord rest(int first) throws IOException {
    state = State.DONE;
    if (first < 0) {
      return null;
    }
    reset();
    for (int c = first; c >= 0; c = in.read()) {
      keep(c);
    }
    index++;
    return preview != null ? RawRecord.tooLarge(file, index, preview, preview.length, size)
        : new RawRecord(file, index, element.toByteArray());
  }

  private int skipWhitespace() throws IOException {
    int c = in.read();
    while (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      c = in.read();
    }
    return c;
  }

  private int skipBom() throws IOException {
    in.mark(3);
    if (in.read() == 0xEF && in.read() == 0xBB && in.read() == 0xBF) {
      return skipWhitespace();
    }
    in.reset();
    return skipWhitespace();
  }

  private static byte[] trim(byte[] b) {
    int s = 0;
    int e = b.length;
    while (s < e && isSpace(b[s])) {
      s++;
    }
    while (e > s && isSpace(b[e - 1])) {
      e--;
    }
    return s == 0 && e == b.length ? b : Arrays.copyOfRange(b, s, e);
  }

  private static boolean isSpace(byte c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  }
}
