package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.SequenceLogProbs;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.apache.spark.SparkException;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReferenceLogProbsTest {
  private static final StructType SCHEMA = new StructType()
      .add("name", DataTypes.StringType)
      .add("p", DataTypes.createArrayType(DataTypes.IntegerType))
      .add("c", DataTypes.createArrayType(DataTypes.IntegerType))
      .add("r", DataTypes.createArrayType(DataTypes.IntegerType));

  @TempDir
  Path dir;

  private static List<Integer> ids(Random random, int n) {
    List<Integer> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(2 + random.nextInt(4000));
    }
    return out;
  }

  private static Dataset<Row> frame(SparkSession spark, int rows, int partitions) {
    Random random = new Random(5);
    List<Row> data = new ArrayList<>();
    for (int i = 0; i < rows; i++) {
      data.add(RowFactory.create("row-" + i, ids(random, 1 + random.nextInt(30)), ids(random, 1 + random.nextInt(40)),
          ids(random, 1 + random.nextInt(40))));
    }
    return spark.createDataFrame(data, SCHEMA).repartition(partitions);
  }

  private static ReferenceLogProbs transformer(long seed) {
    return new ReferenceLogProbs().setPromptCol("p").setChosenCol("c").setRejectedCol("r").setIdCol("name")
        .setChosenLogpCol("lc").setRejectedLogpCol("lr").setChosenTokensCol("nc").setRejectedTokensCol("nr")
        .setModel(CausalLM.BUILTIN_TINY).setModelSeed(seed).setBatchTokens(600).setSortWindow(7);
  }

  private static int[] ints(Row row, String col) {
    return row.<Integer>getList(row.fieldIndex(col)).stream().mapToInt(Integer::intValue).toArray();
  }

  @Test
  void addsLogProbsAndTokenCountsToAnyDataFrameKeepingEachPartitionsRowOrder() {
    SparkSession spark = SharedSpark.get();
    long seed = ReferenceFixtures.freshSeed();
    Dataset<Row> in = frame(spark, 40, 3);
    List<List<String>> namesIn = in.javaRDD().glom().map(rows -> rows.stream().map(r -> r.getString(0)).toList())
        .collect();
    Dataset<Row> out = transformer(seed).transform(in);
    assertEquals(List.of("name", "p", "c", "r", "lc", "lr", "nc", "nr"), Arrays.asList(out.schema().fieldNames()));
    assertEquals(namesIn, out.javaRDD().glom().map(rows -> rows.stream().map(r -> r.getString(0)).toList())
        .collect());
    List<Row> rows = out.collectAsList();
    try (CausalLM model = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), seed);
        NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs lp = new SequenceLogProbs(model);
      for (Row row : rows) {
        SequenceLogProbs.Pairs e = lp.computePairs(m, List.of(ints(row, "p")), List.of(ints(row, "c")),
            List.of(ints(row, "r")), false);
        assertEquals(e.chosen().sums()[0], row.getDouble(4), 1e-6 * Math.abs(e.chosen().sums()[0]), row.getString(0));
        assertEquals(e.rejected().sums()[0], row.getDouble(5), 1e-6 * Math.abs(e.rejected().sums()[0]));
        assertEquals(ints(row, "c").length, row.getInt(6));
        assertEquals(ints(row, "r").length, row.getInt(7));
      }
    }
  }

  @Test
  void savesAndLoadsItsParamsAloneAndInsideAPipeline() throws Exception {
    SparkSession spark = SharedSpark.get();
    ReferenceLogProbs t = transformer(77).setDevice("gpu").setBatchTokens(1234);
    t.write().overwrite().save(dir.resolve("t").toString());
    ReferenceLogProbs back = ReferenceLogProbs.load(dir.resolve("t").toString());
    assertEquals(t.uid(), back.uid());
    for (var p : List.of(t.promptCol(), t.chosenCol(), t.rejectedCol(), t.idCol(), t.chosenLogpCol(),
        t.rejectedLogpCol(), t.chosenTokensCol(), t.rejectedTokensCol(), t.model(), t.device(), t.modelFingerprint())) {
      assertEquals(t.getOrDefault(p), back.getOrDefault(back.getParam(p.name())), p.name());
    }
    assertEquals(77L, back.getOrDefault(back.modelSeed()));
    assertEquals(1234, back.getOrDefault(back.batchTokens()));
    assertEquals(7, back.getOrDefault(back.sortWindow()));

    long seed = ReferenceFixtures.freshSeed();
    PipelineModel pipeline = new Pipeline().setStages(new PipelineStage[] {transformer(seed)})
        .fit(frame(spark, 4, 1));
    pipeline.write().overwrite().save(dir.resolve("pipeline").toString());
    Dataset<Row> scored = PipelineModel.load(dir.resolve("pipeline").toString()).transform(frame(spark, 4, 1));
    assertEquals(4, scored.filter("lc < 0 AND lr < 0").count());
  }

  @Test
  void rejectsMissingOrMistypedInputsAndExistingOutputsBeforeRunning() {
    SparkSession spark = SharedSpark.get();
    Dataset<Row> in = frame(spark, 2, 1);
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
        () -> new ReferenceLogProbs().transform(in));
    assertTrue(missing.getMessage().contains("promptCol: the input has no column 'prompt_ids' (columns: name, p, c, r)"),
        missing.getMessage());
    IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
        () -> transformer(1).setPromptCol("name").transformSchema(in.schema()));
    assertTrue(type.getMessage().contains("column 'name' must be an array of integer token ids, not string"),
        type.getMessage());
    IllegalArgumentException exists = assertThrows(IllegalArgumentException.class,
        () -> transformer(1).setChosenLogpCol("name").transformSchema(in.schema()));
    assertTrue(exists.getMessage().contains("output column 'name' already exists"), exists.getMessage());
  }

  @Test
  void aTokenOutsideTheVocabularyFailsTheTaskNamingTheRowAndColumn() {
    SparkSession spark = SharedSpark.get();
    Dataset<Row> bad = spark.createDataFrame(List.of(
        RowFactory.create("fine", List.of(5, 6), List.of(7), List.of(8)),
        RowFactory.create("broken", List.of(5, 6), List.of(7, 4096), List.of(8))), SCHEMA).coalesce(1);
    SparkException e = assertThrows(SparkException.class, () -> transformer(3).transform(bad).collectAsList());
    StringBuilder message = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      message.append(t.getMessage()).append('\n');
    }
    assertTrue(message.toString().contains("pair broken: c[1] = 4096 is outside the model's vocabulary of 4096"),
        message.toString());
  }
}
