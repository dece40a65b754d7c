package io.sparkdpo.distributed;

import io.sparkdpo.io.Storage;
import io.sparkdpo.train.SeededRng;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Data shards of a synthetic regression problem, y = A x + noise, as small binary files: rows, D, K (ints), then
 * per row D inputs and K targets (little-endian floats). Seeded, so every process that reads a shard sees the same
 * rows.
 */
final class SyntheticShards {
  /** One shard in memory. */
  record Shard(int rows, int inputs, int outputs, float[] x, float[] y) {
    float x(int row, int d) {
      return x[row * inputs + d];
    }

    float y(int row, int k) {
      return y[row * outputs + k];
    }
  }

  private SyntheticShards() {}

  /** Writes {@code count} shards of {@code rows} rows each under {@code dir}; returns their paths. */
  static List<String> write(Path dir, int count, int rows, int inputs, int outputs, long seed) {
    SeededRng truth = new SeededRng(seed);
    float[] a = new float[outputs * inputs];
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) ((truth.nextDouble() * 2 - 1) / Math.sqrt(inputs));
    }
    Storage storage = Storage.local();
    List<String> paths = new ArrayList<>();
    for (int s = 0; s < count; s++) {
      SeededRng rng = new SeededRng(SeededRng.derive(seed, s + 1));
      ByteBuffer buf = ByteBuffer.allocate(12 + 4 * rows * (inputs + outputs)).order(ByteOrder.LITTLE_ENDIAN);
      buf.putInt(rows).putInt(inputs).putInt(outputs);
      for (int r = 0; r < rows; r++) {
        float[] x = new float[inputs];
        for (int d = 0; d < inputs; d++) {
          x[d] = (float) (rng.nextDouble() * 2 - 1);
          buf.putFloat(x[d]);
        }
        for (int k = 0; k < outputs; k++) {
          double y = 0.1 * (rng.nextDouble() - 0.5);
          for (int d = 0; d < inputs; d++) {
            y += a[k * inputs + d] * x[d];
          }
          buf.putFloat((float) y);
        }
      }
      String path = Storage.qualify(dir.resolve(String.format("shard-%05d.f32", s)).toString());
      storage.writeBytes(path, buf.array());
      paths.add(path);
    }
    return paths;
  }

  static Shard read(Storage storage, String path) {
    ByteBuffer buf = ByteBuffer.wrap(storage.readBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
    int rows = buf.getInt();
    int inputs = buf.getInt();
    int outputs = buf.getInt();
    float[] x = new float[rows * inputs];
    float[] y = new float[rows * outputs];
    for (int r = 0; r < rows; r++) {
      for (int d = 0; d < inputs; d++) {
        x[r * inputs + d] = buf.getFloat();
      }
      for (int k = 0; k < outputs; k++) {
        y[r * outputs + k] = buf.getFloat();
      }
    }
    return new Shard(rows, inputs, outputs, x, y);
  }
}
