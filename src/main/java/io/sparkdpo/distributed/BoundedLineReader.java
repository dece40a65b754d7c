package io.sparkdpo.distributed;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Reads {@code \n}-terminated UTF-8 lines from a peer that may be hostile: a line longer than the cap is refused as
 * soon as the cap is passed, so it is never held in memory ({@code BufferedReader.readLine} keeps growing one
 * until the heap is gone). Holds at most the cap plus one read buffer.
 */
final class BoundedLineReader {
  /** A line passed the cap before its end: the connection should be dropped. */
  static final class LineTooLongException extends IOException {
    private static final long serialVersionUID = 1L;

    LineTooLongException(int maxBytes) {
      super("a line longer than " + maxBytes + " bytes");
    }
  }

  private static final int READ_BYTES = 8192;

  private final InputStream in;
  private final int maxBytes;
  private final byte[] chunk = new byte[READ_BYTES];
  private int chunkPos;
  private int chunkEnd;
  private byte[] line = new byte[256];

  /**
   * @param prefix bytes already read from the stream (e.g. by a non-blocking handshake), consumed first
   */
  BoundedLineReader(InputStream in, int maxBytes, byte[] prefix) {
    if (maxBytes < 1) {
      throw new IllegalArgumentException("a line cap must be at least one byte, got " + maxBytes);
    }
    if (prefix.length > READ_BYTES) {
      throw new IllegalArgumentException("a prefix of at most " + READ_BYTES + " bytes, got " + prefix.length);
    }
    this.in = in;
    this.maxBytes = maxBytes;
    System.arraycopy(prefix, 0, chunk, 0, prefix.length);
    this.chunkEnd = prefix.length;
  }

  BoundedLineReader(InputStream in, int maxBytes) {
    this(in, maxBytes, new byte[0]);
  }

  /**
   * The next line without its terminator ({@code \r\n} too), or null at the end of the stream. Bytes after the last
   * newline at the end of the stream count as a last line.
   *
   * @throws LineTooLongException when a line exceeds the cap; the stream is then mid-line and of no further use
   */
  String readLine() throws IOException {
    int length = 0;
    while (true) {
      if (chunkPos == chunkEnd) {
        int n = in.read(chunk, 0, chunk.length);
        if (n < 0) {
          return length == 0 ? null : text(length);
        }
        chunkPos = 0;
        chunkEnd = n;
      }
      int start = chunkPos;
      int newline = -1;
      for (int i = start; i < chunkEnd; i++) {
        if (chunk[i] == '\n') {
          newline = i;
          break;
        }
      }
      int take = (newline < 0 ? chunkEnd : newline) - start;
      if (length + take > maxBytes) {
        throw new LineTooLongException(maxBytes);
      }
      if (length + take > line.length) {
        line = Arrays.copyOf(line, Math.min(maxBytes, Math.max(length + take, line.length * 2)));
      }
      System.arraycopy(chunk, start, line, length, take);
      length += take;
      if (newline >= 0) {
        chunkPos = newline + 1;
        return text(length);
      }
      chunkPos = chunkEnd;
    }
  }

  private String text(int length) {
    int end = length > 0 && line[length - 1] == '\r' ? length - 1 : length;
    return new String(line, 0, end, StandardCharsets.UTF_8);
  }
}
