package io.sparkdpo.data;

import java.io.IOException;
import java.io.OutputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Creates prepare's output files. On the local file system it writes through the raw file system, so no hidden
 * {@code .crc} side files appear next to shards and the folder holds exactly what the manifest lists.
 */
final class OutputFiles {
  private OutputFiles() {}

  static OutputStream create(String path, Configuration conf) throws IOException {
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    if (fs instanceof LocalFileSystem local) {
      fs = local.getRawFileSystem();
    }
    return fs.create(p, true);
  }
}
