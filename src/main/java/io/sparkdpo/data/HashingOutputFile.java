package io.sparkdpo.data;

import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.io.OutputFile;
import org.apache.parquet.io.PositionOutputStream;

/** A Parquet output file on any Hadoop file system that computes its sha256 and size while it is written. */
final class HashingOutputFile implements OutputFile {
  private final Path path;
  private final Configuration conf;
  private final MessageDigest digest = PreferencePair.sha256();
  private long bytes;

  HashingOutputFile(String path, Configuration conf) {
    this.path = new Path(path);
    this.conf = conf;
  }

  @Override
  public PositionOutputStream create(long blockSizeHint) throws IOException {
    return createOrOverwrite(blockSizeHint);
  }

  @Override
  public PositionOutputStream createOrOverwrite(long blockSizeHint) throws IOException {
    OutputStream out = OutputFiles.create(path.toString(), conf);
    return new PositionOutputStream() {
      @Override
      public long getPos() {
        return bytes;
      }

      @Override
      public void write(int b) throws IOException {
        out.write(b);
        digest.update((byte) b);
        bytes++;
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
        digest.update(b, off, len);
        bytes += len;
      }

      @Override
      public void flush() throws IOException {
        out.flush();
      }

      @Override
      public void close() throws IOException {
        out.close();
      }
    };
  }

  @Override
  public boolean supportsBlockSize() {
    return false;
  }

  @Override
  public long defaultBlockSize() {
    return 0;
  }

  @Override
  public String getPath() {
    return path.toString();
  }

  /** Valid once the writer is closed. */
  String sha256() {
    return HexFormat.of().formatHex(digest.digest());
  }

  long bytes() {
    return bytes;
  }
}
