package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Supervised fine-tuning sessions: plain text windows and prepared pairs, on a real (small) CausalLM. */
class SftSessionTest {
  private static final Storage STORAGE = Storage.local();
  /** The built-in tokenizer's vocabulary, one small layer. */
  private static final ModelConfig TEXT_MODEL = ModelConfig.llama(4096, 64, 128, 1, 4, 2, true);

  @TempDir
  Path tmp;

  private static final String TEXT = """
      Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.

      It is a way I have of driving off the spleen and regulating the circulation.
      Whenever I find myself growing grim about the mouth, I account it high time to get to sea.
      """;

  @Test
  void textIsCutIntoOverlappingWindowsThatCoverEveryTokenOnceAndTheModelLearnsIt() throws Exception {
    Path text = tmp.resolve("corpus/a.txt");
    Files.createDirectories(text.getParent());
    Files.writeString(text, TEXT);
    TextTokenizer tokenizer = TextTokenizer.load("builtin", STORAGE);
    String dir = tmp.resolve("run/data").toString();
    TextWindows.Manifest m = TextWindows.write(STORAGE, dir, List.of(tmp.resolve("corpus").toString()), List.of(),
        tokenizer, 9, 2);

    int tokens = 0;
    for (String line : TEXT.split("\n")) {
      tokens += line.isBlank() ? 0 : tokenizer.encode(line.strip()).length + 1;
    }
    long windows = (tokens - 9) / 8 + 1;
    assertEquals(windows, m.windows(TextWindows.TRAIN));
    List<LmExample> shard0 = TextWindows.readShard(STORAGE, m.shardFiles(dir, TextWindows.TRAIN).get(0));
    List<LmExample> shard1 = TextWindows.readShard(STORAGE, m.shardFiles(dir, TextWindows.TRAIN).get(1));
    assertEquals(windows, shard0.size() + shard1.size());
    assertEquals("text-window-0", shard0.get(0).id());
    assertEquals("text-window-1", shard1.get(0).id());
    // Consecutive windows share one token: the last of window k is the first of window k + 1.
    assertEquals(shard0.get(0).response()[8], shard1.get(0).response()[0]);
    assertEquals(shard1.get(0).response()[8], shard0.get(1).response()[0]);
    assertEquals(tokenizer.encode("Call")[0], shard0.get(0).response()[0]);
    assertEquals(m, TextWindows.write(STORAGE, dir, List.of(text.toString()), List.of(), tokenizer, 9, 2),
        "same inputs and settings: nothing rewritten");

    String model = TrainingFixtures.writeModel(tmp.resolve("model"), TEXT_MODEL, 1);
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "sft.learning_rate=0.01",
        "sft.per_device_train_batch_size=4", "sft.lr_scheduler_type=constant");
    SessionSpec spec = SessionSpec.sft(cfg.model(), cfg.sft(), SessionSpec.DataKind.TEXT, 40, windows);
    List<Double> losses = new ArrayList<>();
    List<Double> accuracy = new ArrayList<>();
    try (TrainingSession<?> s = TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"),
        m.shardFiles(dir, TextWindows.TRAIN), List.of(), GradientReducer.SINGLE, Optional.empty())) {
      for (int step = 1; step <= 40; step++) {
        TrainingSession.Outcome o = s.step(step);
        assertEquals(4 * 8, o.items(), "four windows of eight targets each");
        losses.add(o.metrics().get(MetricNames.LOSS));
        accuracy.add(o.metrics().get(SftObjective.MEAN_TOKEN_ACCURACY));
      }
      assertEquals(0, s.evaluate().items(), "no eval text");
    }
    assertEquals(Math.log(4096), losses.get(0), 0.3, "a random model starts near uniform");
    assertTrue(losses.get(39) < 0.3 * losses.get(0), losses.toString());
    assertTrue(accuracy.get(39) > 0.5 && accuracy.get(0) < 0.1, accuracy.toString());
  }

  @Test
  void textWithoutAFullWindowIsRefused() throws Exception {
    Path text = tmp.resolve("short.txt");
    Files.writeString(text, "Too short.\n");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TextWindows.write(STORAGE,
        tmp.resolve("d").toString(), List.of(text.toString()), List.of(), TextTokenizer.load("builtin", STORAGE), 64,
        1));
    assertTrue(e.getMessage().contains("fewer than block_size=64 tokens"), e.getMessage());
  }

  @Test
  void pairsTrainOnTheChosenResponseOrOnTheWholeSequence() {
    List<PreparedPair> pairs = TrainingFixtures.pairs("s", 8, TrainingFixtures.SMALL.vocabSize(), 4);
    String data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(pairs), pairs.subList(0, 4), null);
    String model = TrainingFixtures.writeModel(tmp.resolve("small"), TrainingFixtures.SMALL, 2);
    long responseTokens = pairs.stream().mapToLong(p -> p.chosenIds().length).sum();
    long allTargets = pairs.stream().mapToLong(p -> p.promptIds().length + p.chosenIds().length - 1).sum();
    for (boolean completionOnly : new boolean[] {true, false}) {
      JobConfig cfg = TrainingFixtures.config("model.path=" + model, "sft.learning_rate=0.01",
          "sft.per_device_train_batch_size=4", "sft.gradient_accumulation_steps=2",
          "sft.completion_only_loss=" + completionOnly);
      PreparedData d = PreparedData.open(STORAGE, data);
      SessionSpec spec = SessionSpec.sft(cfg.model(), cfg.sft(), SessionSpec.DataKind.PAIRS, 10, d.trainRows());
      try (TrainingSession<?> s = TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(),
          d.evalFiles(), GradientReducer.SINGLE, Optional.empty())) {
        double before = s.evaluate().metrics().get(MetricNames.LOSS);
        TrainingSession.Outcome first = s.step(1);
        assertEquals(completionOnly ? responseTokens : allTargets, first.items(), "one epoch per step: 8 pairs");
        for (int step = 2; step <= 10; step++) {
          s.step(step);
        }
        TrainingSession.Outcome eval = s.evaluate();
        assertTrue(eval.metrics().get(MetricNames.LOSS) < before - 0.5, before + " -> " + eval.metrics());
        assertEquals(10.0, s.epochAt(10), 1e-12, "ten steps of one epoch each");
      }
    }
  }

  @Test
  void specsTravelAsJson() {
    JobConfig cfg = TrainingFixtures.config("train.loss_type=ipo", "train.save_total_limit=2");
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), "builtin:tiny", 12, 345);
    assertEquals(spec, SessionSpec.fromJson(spec.toJson()));
    SessionSpec sft = SessionSpec.sft(cfg.model(), cfg.sft(), SessionSpec.DataKind.TEXT, 5, 6);
    assertEquals(sft, SessionSpec.fromJson(sft.toJson()));
    assertEquals(cfg.sft(), sft.optimization());
  }
}
