package io.sparkdpo.data;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.to_json;

import io.sparkdpo.config.PrepareSettings;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalog.Table;

/**
 * The {@code table:NAME} inputs: tables of the session's catalog (the built-in one, Hive when the session has Hive
 * support, or any catalog {@code spark.sql.catalog.*} configures, e.g. Delta or Iceberg), read with
 * {@code spark.table}. A table has no row order, so prepare numbers its rows by content: row N is the N-th row in
 * the order of the SHA-256 of the row's JSON rendering (every column, nulls kept; ties are identical rows). The same
 * rows therefore always get the same numbers and the same output, whatever the files, partitions or table format
 * behind them. Quarantine records and prepared rows name a row as {@code source_file = table:CATALOG.DB.NAME},
 * {@code source_row = N}.
 *
 * <p>What identifies a table's content is its row count and a digest of its rows (the sums mod 2^64 of two 64-bit
 * slices of each row's SHA-256: independent of order), computed by one pass over the table before the up-to-date
 * check, so any changed, added or removed row rebuilds the prepared folder, and a rewrite of the same rows
 * (compaction, a new Delta version with nothing changed) does not.
 */
final class InputTables {
  private final SparkSession spark;

  InputTables(SparkSession spark) {
    this.spark = spark;
  }

  /** Whether {@code input} names a table ({@code table:NAME}). */
  static boolean isTable(String input) {
    return InputFile.tableName(input) != null;
  }

  /**
   * The tables, each with its qualified name, row count and digest; a table that does not exist fails here, on the
   * driver, before any Spark job.
   */
  List<InputFile> resolve(List<String> inputs) {
    List<String> qualified = inputs.stream().map(in -> qualifiedName(InputFile.tableName(in))).distinct().toList();
    List<InputFile> out = new ArrayList<>();
    for (String name : qualified) { // every name checked above, before this first job
      long[] sums = digestSums(rows(spark, name));
      String digest = PrepareJob.sha256("table-rows-v1", Long.toString(sums[0]), Long.toUnsignedString(sums[1]),
          Long.toUnsignedString(sums[2]));
      out.add(new InputFile(PrepareSettings.TABLE_PREFIX + name, InputFile.TABLE, 0, 0, null, sums[0], digest));
    }
    return out;
  }

  /** {@code catalog.db.table} as the catalog names it, so the same table spelled two ways is one input. */
  private String qualifiedName(String name) {
    if (name.isEmpty()) {
      throw new IllegalArgumentException("input table: names no table; write table:NAME (e.g. table:db.pairs)");
    }
    if (!spark.catalog().tableExists(name)) {
      throw new IllegalArgumentException("input table:" + name + " does not exist in the session's catalog "
          + "(current catalog " + spark.catalog().currentCatalog() + ", database " + spark.catalog().currentDatabase()
          + "; SHOW TABLES lists its tables); create it, name it with its database "
          + "(table:db.name), or configure the catalog that holds it (spark.sql.catalog.NAME in spark.conf)");
    }
    Table t;
    try {
      t = spark.catalog().getTable(name);
    } catch (org.apache.spark.sql.AnalysisException e) {
      throw new IllegalArgumentException("input table:" + name + " cannot be read: " + e.getMessage(), e);
    }
    if (t.isTemporary() || t.catalog() == null) {
      return name; // a temporary view lives in no catalog
    }
    List<String> parts = new ArrayList<>();
    parts.add(t.catalog());
    if (t.namespace() != null) {
      parts.addAll(Arrays.asList(t.namespace()));
    }
    parts.add(t.name());
    return parts.stream().map(InputTables::quote).collect(Collectors.joining("."));
  }

  private static String quote(String part) {
    return part.matches("[A-Za-z0-9_]+") ? part : "`" + part.replace("`", "``") + "`";
  }

  /** The table's rows; {@code qualified} as {@link #resolve} returns it (after {@code table:}). */
  static Dataset<Row> rows(SparkSession spark, String qualified) {
    return spark.table(qualified);
  }

  /** The whole row as one JSON object; null fields are kept so they are reported as null, not missing. */
  static Column json(Dataset<Row> df) {
    Column[] cols = Arrays.stream(df.columns()).map(c -> col("`" + c.replace("`", "``") + "`")).toArray(Column[]::new);
    return to_json(struct(cols), Map.of("ignoreNullFields", "false"));
  }

  /** {row count, sum of the first 8 bytes of each row's SHA-256, sum of the next 8} (sums mod 2^64). */
  private static long[] digestSums(Dataset<Row> df) {
    return df.select(json(df)).as(Encoders.STRING()).javaRDD().mapPartitions(InputTables::partitionSums)
        .fold(new long[3], (a, b) -> new long[] {a[0] + b[0], a[1] + b[1], a[2] + b[2]});
  }

  private static Iterator<long[]> partitionSums(Iterator<String> rows) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    long[] s = new long[3];
    while (rows.hasNext()) {
      ByteBuffer h = ByteBuffer.wrap(md.digest(rows.next().getBytes(StandardCharsets.UTF_8)));
      s[0]++;
      s[1] += h.getLong(0);
      s[2] += h.getLong(8);
    }
    return List.of(s).iterator();
  }
}
