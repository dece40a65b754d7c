package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class BoundedLineReaderTest {

  @Test
  void readsLinesCrLfAPrefixAndALastLineWithoutNewline() throws IOException {
    BoundedLineReader r = new BoundedLineReader(stream("lo\r\n\nthird ünï\nlast"), 64,
        "hel".getBytes(StandardCharsets.UTF_8));
    assertEquals("hello", r.readLine());
    assertEquals("", r.readLine());
    assertEquals("third ünï", r.readLine());
    assertEquals("last", r.readLine());
    assertNull(r.readLine());
  }

  @Test
  void aLineOfExactlyTheCapIsReadAndOneByteMoreIsRefused() throws IOException {
    String cap = "x".repeat(10_000);
    BoundedLineReader r = new BoundedLineReader(stream(cap + "\n" + cap + "y\nnext\n"), 10_000);
    assertEquals(cap, r.readLine());
    BoundedLineReader.LineTooLongException e = assertThrows(BoundedLineReader.LineTooLongException.class,
        r::readLine);
    assertEquals("a line longer than 10000 bytes", e.getMessage());
  }

  /** A 100 MB line without a newline: refused after reading little more than the cap, never held. */
  @Test
  void aHundredMegabyteLineIsRefusedAfterReadingOnlyTheCap() {
    Endless endless = new Endless(100L << 20);
    BoundedLineReader r = new BoundedLineReader(endless, 64 << 10);
    assertThrows(BoundedLineReader.LineTooLongException.class, r::readLine);
    assertTrue(endless.served <= (64 << 10) + 8192, "read " + endless.served + " bytes");
  }

  private static InputStream stream(String s) {
    return new ByteArrayInputStream(s.getBytes(StandardCharsets.UTF_8));
  }

  /** {@code size} bytes of 'x', counting what was read. */
  private static final class Endless extends InputStream {
    private final long size;
    long served;

    Endless(long size) {
      this.size = size;
    }

    @Override
    public int read() {
      if (served >= size) {
        return -1;
      }
      served++;
      return 'x';
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (served >= size) {
        return -1;
      }
      int n = (int) Math.min(len, size - served);
      java.util.Arrays.fill(b, off, off + n, (byte) 'x');
      served += n;
      return n;
    }
  }
}
