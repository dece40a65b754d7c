package io.sparkdpo.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Type;
import org.apache.parquet.schema.Types;

/**
 * Writes shards as the reference stage leaves them, for trainer tests: prepare's schema plus the two optional
 * reference columns ({@code ref_chosen_logps}, {@code ref_rejected_logps}, or the legacy names), set where the pair
 * has them.
 */
public final class ReferencedShards {
  private ReferencedShards() {}

  public static void write(Path file, List<PreparedPair> pairs) {
    write(file, pairs, ReferenceColumns.CHOSEN_LOGPS, ReferenceColumns.REJECTED_LOGPS);
  }

  /** As the reference stage wrote them before TRL's names: {@code ref_chosen_logp}, {@code ref_rejected_logp}. */
  public static void writeLegacy(Path file, List<PreparedPair> pairs) {
    write(file, pairs, ReferenceColumns.LEGACY_CHOSEN_LOGP, ReferenceColumns.LEGACY_REJECTED_LOGP);
  }

  private static void write(Path file, List<PreparedPair> pairs, String chosenCol, String rejectedCol) {
    List<Type> fields = new ArrayList<>(PreparedShardWriter.SCHEMA.getFields());
    fields.add(Types.optional(PrimitiveTypeName.DOUBLE).named(chosenCol));
    fields.add(Types.optional(PrimitiveTypeName.DOUBLE).named(rejectedCol));
    MessageType schema = new MessageType(PreparedShardWriter.SCHEMA.getName(), fields);
    try {
      Files.createDirectories(file.getParent());
      SimpleGroupFactory groups = new SimpleGroupFactory(schema);
      try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new org.apache.hadoop.fs.Path(file.toUri()))
          .withType(schema).withConf(new Configuration()).withWriteMode(ParquetFileWriter.Mode.OVERWRITE).build()) {
        for (PreparedPair p : pairs) {
          Group g = groups.newGroup()
              .append("pair_id", p.pairId()).append("source_file", p.sourceFile()).append("source_row", p.sourceRow())
              .append("prompt_text", p.promptText()).append("chosen_text", p.chosenText())
              .append("rejected_text", p.rejectedText());
          list(g.addGroup("prompt_ids"), p.promptIds());
          list(g.addGroup("chosen_ids"), p.chosenIds());
          list(g.addGroup("rejected_ids"), p.rejectedIds());
          g.append("prompt_len", p.promptIds().length).append("chosen_len", p.chosenIds().length)
              .append("rejected_len", p.rejectedIds().length).append("truncated", p.truncated());
          if (p.refChosenLogp() != null) {
            g.append(chosenCol, p.refChosenLogp());
          }
          if (p.refRejectedLogp() != null) {
            g.append(rejectedCol, p.refRejectedLogp());
          }
          w.write(g);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void list(Group list, int[] ids) {
    for (int id : ids) {
      list.addGroup("list").append("element", id);
    }
  }
}
