package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reward models: the causal LM with transformers' one-label {@code *ForSequenceClassification} score head, against the
 * independent reference of tools/golden/reward_golden.py (golden folders it wrote; folders this test writes for its
 * {@code verify}).
 */
class RewardModelTest {
  static final List<String> CASES = List.of("llama_pad1", "qwen2_pad_is_eos");
  private static final Storage STORAGE = Storage.local();
  /** A causal LM as pi_SFT would be: pad 1, EOS 0, untied head. */
  private static final ModelConfig CAUSAL = ModelConfig.llama(64, 32, 64, 2, 4, 2, false);

  @TempDir
  Path tmp;

  static String folder(String name) {
    return Path.of(System.getProperty("project.basedir", "."), "src/test/resources/io/sparkdpo/model/golden/reward",
        name).toString();
  }

  static int[][] rows(JsonNode array) {
    int[][] out = new int[array.size()][];
    for (int i = 0; i < out.length; i++) {
      out[i] = new int[array.get(i).size()];
      for (int j = 0; j < out[i].length; j++) {
        out[i][j] = array.get(i).get(j).asInt();
      }
    }
    return out;
  }

  static float[] scores(CausalLM model, int[][] rows) {
    try (NDManager m = NDManager.newBaseManager()) {
      int width = rows[0].length;
      int[] flat = new int[rows.length * width];
      for (int i = 0; i < rows.length; i++) {
        System.arraycopy(rows[i], 0, flat, i * width, width);
      }
      return model.scores(m.create(flat, new Shape(rows.length, width)), false).toFloatArray();
    }
  }

  @Test
  void goldenClassifiersScoreTheLastNonPaddingTokenAsTransformersDoes() throws Exception {
    for (String name : CASES) {
      JsonNode g = Json.MAPPER.readTree(Path.of(folder(name), "golden.json").toFile());
      try (CausalLM model = CausalLM.load(folder(name), STORAGE, Device.cpu())) {
        assertTrue(model.config().scoresSequences(), name);
        float[] actual = scores(model, rows(g.get("rows")));
        for (int i = 0; i < actual.length; i++) {
          assertEquals(g.get("scores").get(i).asDouble(), actual[i], 1e-5, name + " row " + i);
        }
      }
    }
  }

  @Test
  void aCausalLmBecomesARewardModelWithItsDecoderWeightsNoLmHeadAndASeededScoreHead() {
    String causal = tmp.resolve("causal").toString();
    try (CausalLM m = CausalLM.create(CAUSAL, Device.cpu(), 3)) {
      m.save(causal, STORAGE, DataType.FLOAT32);
    }
    try (CausalLM lm = CausalLM.load(causal, STORAGE, Device.cpu());
         CausalLM a = CausalLM.loadScorer(causal, STORAGE, Device.cpu(), 11);
         CausalLM b = CausalLM.loadScorer(causal, STORAGE, Device.cpu(), 11);
         CausalLM c = CausalLM.loadScorer(causal, STORAGE, Device.cpu(), 12)) {
      assertEquals("LlamaForSequenceClassification", a.config().architecture());
      assertEquals(1, a.config().padTokenId());
      assertFalse(a.parameters().containsKey("lm_head.weight"));
      assertEquals(new Shape(1, 32), a.parameters().get("score.weight").getArray().getShape());
      lm.parameters().forEach((name, p) -> {
        if (!name.equals("lm_head.weight")) {
          assertArrayEquals(p.getArray().toFloatArray(), a.parameters().get(name).getArray().toFloatArray(), name);
        }
      });
      float[] score = a.parameters().get("score.weight").getArray().toFloatArray();
      assertArrayEquals(score, b.parameters().get("score.weight").getArray().toFloatArray());
      assertNotEquals(a.fingerprint(), c.fingerprint());
      double sq = 0;
      for (float x : score) {
        sq += x * x;
      }
      double std = Math.sqrt(sq / score.length);
      assertTrue(std > 0.01 && std < 0.03, "score head drawn from normal(0, initializer_range=0.02): std " + std);
      assertEquals(CAUSAL.numParameters() - 64L * 32 + 32, a.numParameters());
      assertEquals(a.numParameters(), a.config().numParameters());
      assertThrows(IllegalStateException.class, () -> a.logits(null, false));
      assertThrows(IllegalStateException.class, () -> scores(lm, new int[][] {{2, 3}}));
    }
  }

  @Test
  void aSavedRewardModelHasTheLayoutTransformersLoadsAndReloadsWithTheSameScores() throws Exception {
    Path root = Path.of(System.getProperty("project.build.directory", "target"), "reward-java");
    STORAGE.delete(root.toString());
    int[][] rows = {{5, 9, 12, 7, 30, 2}, {4, 1, 15, 16, 1, 1}, {7, 21, 14, 0, 1, 1}, {1, 1, 1, 1, 1, 1}};
    try (CausalLM model = CausalLM.loadScorer(writeCausal(), STORAGE,
        Device.cpu(), 5)) {
      float[] before = scores(model, rows);
      String out = root.resolve("llama-from-causal").toString();
      model.save(out, STORAGE, DataType.FLOAT32);
      JsonNode config = Json.MAPPER.readTree(Path.of(out, "config.json").toFile());
      assertEquals("LlamaForSequenceClassification", config.get("architectures").get(0).asText());
      assertEquals(1, config.get("num_labels").asInt());
      assertEquals(1, config.get("id2label").size());
      assertEquals("LABEL_0", config.get("id2label").get("0").asText());
      assertEquals(1, config.get("pad_token_id").asInt());
      Map<String, ModelFolder.Located> headers = ModelFolder.headers(STORAGE, out);
      assertArrayEquals(new long[] {1, 32}, headers.get("score.weight").entry().shape());
      assertFalse(headers.containsKey("lm_head.weight"));
      try (CausalLM reloaded = CausalLM.load(out, STORAGE, Device.cpu())) {
        assertArrayEquals(before, scores(reloaded, rows), 0f);
      }
      // Padding is skipped: a row scores the same with more padding after it, not the same with a token cut.
      float[] wider = scores(model, new int[][] {{5, 9, 12, 7, 30, 2, 1, 1}});
      assertEquals(before[0], wider[0], 1e-6);
      writeScores(out, rows, before);
    }
    for (String name : CASES) { // the golden folders go round trip as well, Qwen2 (pad = EOS) included
      JsonNode g = Json.MAPPER.readTree(Path.of(folder(name), "golden.json").toFile());
      String out = root.resolve(name).toString();
      try (CausalLM model = CausalLM.load(folder(name), STORAGE, Device.cpu())) {
        model.save(out, STORAGE, DataType.FLOAT32);
      }
      try (CausalLM reloaded = CausalLM.load(out, STORAGE, Device.cpu())) {
        writeScores(out, rows(g.get("rows")), scores(reloaded, rows(g.get("rows"))));
      }
    }
    assertEquals(3, Files.list(root).count());
  }

  private String writeCausal() {
    String causal = tmp.resolve("causal-for-export").toString();
    try (CausalLM m = CausalLM.create(CAUSAL, Device.cpu(), 9)) {
      m.save(causal, STORAGE, DataType.FLOAT32);
    }
    return causal;
  }

  /** The rows and Java's scores, for {@code /usr/bin/python3 tools/golden/reward_golden.py verify}. */
  private static void writeScores(String folder, int[][] rows, float[] scores) throws Exception {
    ObjectNode out = Json.MAPPER.createObjectNode();
    ArrayNode r = out.putArray("rows");
    for (int[] row : rows) {
      ArrayNode a = r.addArray();
      for (int id : row) {
        a.add(id);
      }
    }
    ArrayNode s = out.putArray("scores");
    for (float x : scores) {
      s.add(x);
    }
    Files.write(Path.of(folder, "java-scores.json"), Json.MAPPER.writeValueAsBytes(out));
  }

  @Test
  void aClassifierConfigWithOtherThanOneLabelOrWithoutPadTokenIsRefusedNamingTheKey() {
    String base = "{\"architectures\": [\"LlamaForSequenceClassification\"], \"model_type\": \"llama\", "
        + "\"vocab_size\": 32, \"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1, "
        + "\"num_attention_heads\": 4, \"rms_norm_eps\": 1e-5";
    IllegalArgumentException twoLabels = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        base + ", \"pad_token_id\": 1, \"id2label\": {\"0\": \"A\", \"1\": \"B\"}}", "x/config.json"));
    assertTrue(twoLabels.getMessage().startsWith("x/config.json: num_labels: a reward model has one label (got 2"),
        twoLabels.getMessage());
    IllegalArgumentException byDefault = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        base + ", \"pad_token_id\": 1}", "x/config.json"));
    assertTrue(byDefault.getMessage().contains("transformers' default"), byDefault.getMessage());
    IllegalArgumentException noPad = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        base + ", \"num_labels\": 1}", "x/config.json"));
    assertTrue(noPad.getMessage().startsWith("x/config.json: pad_token_id: missing"), noPad.getMessage());
    ModelConfig ok = ModelConfig.fromJson(base + ", \"pad_token_id\": 1, \"num_labels\": 1}", "x/config.json");
    assertTrue(ok.scoresSequences());
  }
}
