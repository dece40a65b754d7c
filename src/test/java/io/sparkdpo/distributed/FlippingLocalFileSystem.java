package io.sparkdpo.distributed;

import java.io.IOException;
import java.nio.file.Files;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * The local file system as one host with a bad disk or cache sees it: every read of a file named {@link #NAME}
 * returns its bytes with one bit flipped (a copy is opened; the file itself is intact for everyone else).
 * Installed per {@link org.apache.hadoop.conf.Configuration} with {@code fs.file.impl} (and the cache off).
 */
public final class FlippingLocalFileSystem extends RawLocalFileSystem {
  static final String NAME = "weights.f32";

  @Override
  public FSDataInputStream open(Path f, int bufferSize) throws IOException {
    if (!f.getName().equals(NAME)) {
      return super.open(f, bufferSize);
    }
    byte[] bytes = Files.readAllBytes(pathToFile(f).toPath());
    bytes[bytes.length / 2] ^= 0x10;
    java.nio.file.Path copy = Files.createTempFile("flipped-", ".f32");
    copy.toFile().deleteOnExit();
    Files.write(copy, bytes);
    return super.open(new Path(copy.toUri()), bufferSize);
  }
}
