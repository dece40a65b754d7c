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
 * broken JSON is still cut out exactly and quarantined on its own. Whatever follows a structural break (an
 * unterminated string, a missing bracket, text after the array) becomes one last record, so no byte is dropped.
 */
final class JsonArrayScanner extends Lookahead<RawRecord> {
  private enum State { BEFORE_ARRAY, IN_ARRAY, AFTER_ARRAY, DONE }

  private final String file;
  private final InputStream in;
  private final ByteArrayOutputStream element = new ByteArrayOutputStream();
  private State state = State.BEFORE_ARRAY;
  private boolean afterComma;
  private long index;

  JsonArrayScanner(String file, InputStream in) {
    this.file = file;
    this.in = new BufferedInputStream(in, 1 << 16);
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
              element.reset();
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

  /** One element starting with c, up to the comma or bracket that ends it at depth 0 outside strings. */
  private RawRecord element(int c) throws IOException {
    element.reset();
    int depth = 0;
    boolean inString = false;
    for (; c >= 0; c = in.read()) {
      if (inString) {
        element.write(c);
        if (c == '\\') {
          int escaped = in.read();
          if (escaped >= 0) {
            element.write(escaped);
          }
        } else if (c == '"') {
          inString = false;
        }
        continue;
      }
      if (depth == 0 && (c == ',' || c == ']')) {
        afterComma = c == ',';
        state = c == ',' ? State.IN_ARRAY : State.AFTER_ARRAY;
        return record();
      }
      if (c == '"') {
        inString = true;
      } else if (c == '{' || c == '[') {
        depth++;
      } else if (c == '}' || c == ']') {
        depth--;
      }
      element.write(c);
    }
    state = State.DONE;
    return record();
  }

  private RawRecord record() {
    index++;
    return new RawRecord(file, index, trim(element.toByteArray()));
  }

  private RawRecord rest(int first) throws IOException {
    state = State.DONE;
    if (first < 0) {
      return null;
    }
    element.reset();
    element.write(first);
    in.transferTo(element);
    index++;
    return new RawRecord(file, index, element.toByteArray());
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
