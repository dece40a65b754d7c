package io.sparkdpo.data;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Type;

/**
 * Reads a prepared (or referenced) shard without Spark, with parquet-hadoop, so a training task can load its own
 * shard. Accepts the files prepare writes and the ones Spark writes when the reference stage adds its columns; the
 * reference log-probs under TRL's names or the older ones ({@link ReferenceColumns}), and the reward margin when the
 * shard has the column (float or double, as TRL's datasets and prepare write it).
 * A shard listed in its folder's {@code manifest.json} is first checked against the size and sha256 recorded there
 * ({@link ShardChecksums}): one more sequential read of the file, against training on damaged data.
 */
public final class PreparedShardReader {
  private PreparedShardReader() {}

  public static List<PreparedPair> read(Storage storage, String fileUri) {
    PreparedManifest.Shard record = ShardChecksums.recordOf(storage, fileUri);
    if (record != null) {
      ShardChecksums.verify(storage, fileUri, record.bytes(), record.sha256(),
          fileUri.substring(0, fileUri.lastIndexOf('/', fileUri.lastIndexOf('/') - 1) + 1) + PreparedManifest.FILE);
    }
    List<PreparedPair> out = new ArrayList<>();
    try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), new Path(Storage.qualify(fileUri)))
        .withConf(storage.conf()).build()) {
      String[] logps = null; // chosen, rejected: which names this file uses, from its first row's schema
      for (Group g = reader.read(); g != null; g = reader.read()) {
        if (logps == null) {
          Set<String> names = new HashSet<>();
          g.getType().getFields().forEach(f -> names.add(f.getName()));
          logps = new String[] {ReferenceColumns.chosenIn(names), ReferenceColumns.rejectedIn(names)};
        }
        out.add(toPair(g, logps[0], logps[1]));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read prepared shard " + fileUri + ": " + e.getMessage(), e);
    }
    return out;
  }

  private static PreparedPair toPair(Group g, String chosenLogps, String rejectedLogps) {
    return new PreparedPair(
        g.getString("pair_id", 0),
        g.getString("source_file", 0),
        g.getLong("source_row", 0),
        g.getString("prompt_text", 0),
        g.getString("chosen_text", 0),
        g.getString("rejected_text", 0),
        ints(g, "prompt_ids"),
        ints(g, "chosen_ids"),
        ints(g, "rejected_ids"),
        g.getInteger("prompt_len", 0),
        g.getInteger("chosen_len", 0),
        g.getInteger("rejected_len", 0),
        g.getBoolean("truncated", 0),
        optionalDouble(g, chosenLogps),
        optionalDouble(g, rejectedLogps),
        g.getType().containsField(PreparedShardWriter.MARGIN) ? optionalDouble(g, PreparedShardWriter.MARGIN) : null);
  }

  /** A LIST of int32, in the standard 3-level layout or the legacy 2-level one. */
  private static int[] ints(Group g, String field) {
    Group list = g.getGroup(field, 0);
    int n = list.getFieldRepetitionCount(0);
    int[] out = new int[n];
    boolean nested = !((GroupType) list.getType()).getType(0).isPrimitive();
    for (int i = 0; i < n; i++) {
      out[i] = nested ? list.getGroup(0, i).getInteger(0, 0) : list.getInteger(0, i);
    }
    return out;
  }

  /** A nullable log-prob column; TRL stores its log-probs as float32, the reference stage as double. */
  private static Double optionalDouble(Group g, String field) {
    if (field == null || g.getFieldRepetitionCount(field) == 0) {
      return null;
    }
    Type type = g.getType().getType(field);
    if (type.isPrimitive() && type.asPrimitiveType().getPrimitiveTypeName() == PrimitiveTypeName.FLOAT) {
      return (double) g.getFloat(field, 0);
    }
    return g.getDouble(field, 0);
  }
}
