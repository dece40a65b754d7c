package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.model.ModelConfig;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class MemoryPlannerTest {
  static final ModelConfig LLAMA_1B = published("llama-3.2-1b");
  static final ModelConfig LLAMA_8B = published("llama-3.1-8b");

  static ModelConfig published(String name) {
    try (InputStream in = ModelConfig.class.getResourceAsStream("configs/" + name + ".json")) {
      return ModelConfig.fromJson(new String(in.readAllBytes(), StandardCharsets.UTF_8), name);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Full fine-tuning, precomputed reference, one worker, micro-batch 1 x 1024 tokens with 1000-token responses. */
  static MemoryPlanner.Job full(ModelConfig model) {
    return new MemoryPlanner.Job(model, "bfloat16", null, false, "no", MemoryPlanner.Reference.NONE, "float32", 1, 1,
        1024, 1000, 1, 25L << 20, MemoryPlanner.CPU_OVERHEAD_BYTES);
  }

  @Test
  void fullFineTuningOfLlama1BHolds16BytesPerParameterBeforeActivations() {
    MemoryPlan plan = MemoryPlanner.plan(full(LLAMA_1B));
    long params = 1_235_814_400L;
    assertEquals(4 * params, plan.bytes(MemoryPlanner.WEIGHTS));
    assertEquals(4 * params, plan.bytes(MemoryPlanner.GRADIENTS));
    assertEquals(8 * params, plan.bytes(MemoryPlanner.OPTIMIZER));
    assertEquals(0, plan.bytes(MemoryPlanner.MASTER));
    assertEquals(0, plan.bytes(MemoryPlanner.REFERENCE));
    assertEquals(0, plan.bytes(MemoryPlanner.ALLREDUCE));
    assertEquals(19_773_030_400L, plan.bytes(MemoryPlanner.WEIGHTS) + plan.bytes(MemoryPlanner.GRADIENTS)
        + plan.bytes(MemoryPlanner.OPTIMIZER));
  }

  @Test
  void inLoopReferenceOfAFullFineTuneIsASecondCopyInTheReferenceDtype() {
    MemoryPlan plan = MemoryPlanner.plan(full(LLAMA_1B).withReference(MemoryPlanner.Reference.IN_LOOP));
    assertEquals(4 * 1_235_814_400L, plan.bytes(MemoryPlanner.REFERENCE));
    assertTrue(plan.phases().stream().anyMatch(p -> p.name().equals("reference forward")));
  }

  @Test
  void loraOn8BKeepsTheBaseInBf16AndTrainsPeftsAdapterCount() {
    MemoryPlanner.Job job = full(LLAMA_8B).withLora(MemoryPlanner.Lora.allLinear(16))
        .withReference(MemoryPlanner.Reference.IN_LOOP);
    MemoryPlan plan = MemoryPlanner.plan(job);
    assertEquals(2 * 8_030_261_248L, plan.bytes(MemoryPlanner.WEIGHTS)); // 16.06 GB of frozen bf16 weights
    // PEFT prints "trainable params: 41,943,040" for Llama-3-8B with r=16 on all seven projections.
    long adapters = 41_943_040L;
    assertEquals(4 * adapters, plan.bytes(MemoryPlanner.ADAPTERS));
    assertEquals(4 * adapters, plan.bytes(MemoryPlanner.GRADIENTS));
    assertEquals(8 * adapters, plan.bytes(MemoryPlanner.OPTIMIZER));
    assertEquals(0, plan.bytes(MemoryPlanner.REFERENCE)); // the base with adapters disabled
  }

  @Test
  void modulesToSaveTrainFloat32CopiesOfTheVocabularyMatrices() {
    MemoryPlanner.Lora lora = new MemoryPlanner.Lora(8, 0, List.of("q_proj", "v_proj"), List.of("lm_head"));
    MemoryPlan plan = MemoryPlanner.plan(full(LLAMA_8B).withLora(lora));
    long adapters = 32L * 8 * ((4096 + 4096) + (4096 + 1024));
    long head = 128_256L * 4096;
    assertEquals(4 * (adapters + head), plan.bytes(MemoryPlanner.ADAPTERS));
    assertEquals(8 * (adapters + head), plan.bytes(MemoryPlanner.OPTIMIZER));
  }

  @Test
  void activationCountsPerTokenAndLayerFollowWhatTheModelKeeps() {
    MemoryPlanner.Shapes s = new MemoryPlanner.Shapes(LLAMA_1B);
    MemoryPlanner.Layer layer = s.layer(null, 4);
    // d = 2048, q = 32 x 64 = 2048, kv = 8 x 64 = 512, I = 8192, grouped-query attention, float32:
    // all intermediates 8d + 3q + 3kv + 2q + 4I = 60,928 floats, saved for backward 6d + 2q + 2q + 4I = 53,248,
    // plus 32 logsumexp values and 10 RMSNorm scalars per token.
    assertEquals(8 * 2048 + 3 * 2048 + 3 * 512 + 2 * 2048 + 4 * 8192, 60_928);
    assertEquals(4 * (60_928 + 42), layer.all());
    assertEquals(4 * (53_248 + 42), layer.saved());
    assertEquals(4 * (60_928 - 8192 + 42), layer.noGradAll());
    assertEquals((2048 + 512) * 2048, s.gatheredWeightElements());
  }

  @Test
  void loraAddsItsAdapterPathPerTargetAndFreezesTheNorms() {
    MemoryPlanner.Shapes s = new MemoryPlanner.Shapes(LLAMA_1B);
    MemoryPlanner.Lora lora = new MemoryPlanner.Lora(16, 0, List.of("q_proj", "down_proj"), List.of());
    MemoryPlanner.Layer plain = s.layer(null, 4);
    MemoryPlanner.Layer adapted = s.layer(lora, 4);
    // float32: the intermediates are closed once the sum replaces the base output; A x [r] stays (autograd keeps it)
    // per target; the norms' normalised inputs are no longer kept.
    assertEquals(plain.all() + 4 * 16 + 4 * 16, adapted.all());
    assertEquals(plain.saved() - 4 * 2 * 2048 + 4 * 16 * 2, adapted.saved());
    // bf16 base: the input cast to float32 and A x stay (both kept for backward); the rest is closed.
    long[] q = s.adapter(lora, "q_proj", 2);
    assertEquals(4 * 2048 + 4 * 16, q[0]);
    assertEquals(4 * 2048 + 4 * 16, q[1]);
    long[] dropped = s.adapter(new MemoryPlanner.Lora(16, 0.1, List.of("down_proj"), List.of()), "down_proj", 4);
    assertEquals(4 * 16 + 8 * 8192, dropped[0]);
  }

  @Test
  void backwardPhaseOfLlama1BHoldsSavedActivationsAndFourLogitArrays() {
    MemoryPlan plan = MemoryPlanner.plan(full(LLAMA_1B));
    long tokens = 2 * 1024;
    long rows = 2 * 1000;
    long saved = tokens * 16 * (53_248 * 4 + (32 + 10) * 4) + 16L * (2048 + 512) * 2048 * 4;
    long expected = saved + rows * 2048 * 4 + 4 * rows * 128_256 * 4 + 128_256L * 2048 * 4;
    assertEquals(12_491_620_352L, expected);
    assertEquals(expected, phase(plan, "backward"));
    assertEquals("backward", plan.peakPhase());
    assertEquals(expected, plan.bytes(MemoryPlanner.ACTIVATIONS));
  }

  @Test
  void gradientCheckpointingKeepsOnlyEachLayersInput() {
    MemoryPlan plain = MemoryPlanner.plan(full(LLAMA_1B));
    MemoryPlan ckpt = MemoryPlanner.plan(full(LLAMA_1B).withGradientCheckpointing(true));
    long tokens = 2 * 1024;
    long savedTrunkPlain = tokens * 16 * (53_248 * 4 + 42 * 4) + 16L * (2048 + 512) * 2048 * 4;
    long keptInputs = tokens * 17 * 2048 * 4; // 16 layer inputs and the top leaf
    assertEquals(savedTrunkPlain - keptInputs, phase(plain, "backward") - phase(ckpt, "backward"));
    // Forward: the inputs plus one layer at a time without graph.
    long oneLayer = tokens * 4 * (60_928 - 8192 + 42) + (2048 + 512) * 2048 * 4;
    assertEquals(keptInputs + oneLayer + tokens * 3 * 2048 * 4, phase(ckpt, "trunk forward"));
  }

  @Test
  void workersAddOneAllReduceBucketCappedByTheGradients() {
    MemoryPlanner.Job one = full(LLAMA_1B);
    MemoryPlanner.Job two = new MemoryPlanner.Job(one.model(), one.baseDtype(), null, false, "no",
        MemoryPlanner.Reference.NONE, "float32", 1, 1, 1024, 1000, 2, 25L << 20, one.overheadBytes());
    assertEquals(25L << 20, MemoryPlanner.plan(two).bytes(MemoryPlanner.ALLREDUCE));
    assertEquals(MemoryPlanner.plan(one).totalBytes() + (25L << 20), MemoryPlanner.plan(two).totalBytes());
    MemoryPlanner.Job tiny = new MemoryPlanner.Job(ModelConfig.tiny(), "float32", null, false, "no",
        MemoryPlanner.Reference.NONE, "float32", 1, 1, 64, 32, 2, 1L << 30, 0);
    assertEquals(4 * ModelConfig.tiny().numParameters(), MemoryPlanner.plan(tiny).bytes(MemoryPlanner.ALLREDUCE));
  }

  @Test
  void smallerMicroBatchesKeepThePairsPerStep() {
    MemoryPlanner.Job eight = new MemoryPlanner.Job(LLAMA_1B, "bfloat16", null, false, "no",
        MemoryPlanner.Reference.NONE, "float32", 8, 2, 512, 400, 1, 25L << 20, 0);
    MemoryPlanner.Job one = eight.withBatchSize(1);
    assertEquals(1, one.batchSize());
    assertEquals(16, one.gradientAccumulationSteps());
    assertTrue(MemoryPlanner.plan(one).totalBytes() < MemoryPlanner.plan(eight).totalBytes());
  }

  @Test
  void an8BFullFineTuneDoesNotFit80GBAndLoraDoes() {
    MemoryPlanner.Job job = new MemoryPlanner.Job(LLAMA_8B, "bfloat16", null, false, "no",
        MemoryPlanner.Reference.IN_LOOP, "float32", 4, 1, 1024, 512, 8, 25L << 20, MemoryPlanner.GPU_OVERHEAD_BYTES);
    MemoryPlan plan = MemoryPlanner.plan(job);
    long device = 80_000_000_000L;
    assertTrue(plan.totalBytes() > 150_000_000_000L, "16 bytes/param + a float32 reference: " + plan.totalBytes());
    List<MemoryPlanner.Suggestion> s = MemoryPlanner.suggestions(plan, device);
    assertFalse(s.isEmpty());
    assertTrue(s.stream().allMatch(x -> x.plan().totalBytes() <= device), s.toString());
    assertTrue(s.stream().anyMatch(x -> x.change().startsWith("peft lora r=16")), s.toString());
    assertTrue(MemoryPlanner.suggestions(plan, plan.totalBytes()).isEmpty());
  }

  @Test
  void refusesUnknownDtypesAndModules() {
    assertThrows(IllegalArgumentException.class, () -> MemoryPlanner.bytesOf("int8"));
    assertThrows(IllegalArgumentException.class,
        () -> new MemoryPlanner.Lora(8, 0, List.of("qkv_proj"), List.of()));
    assertThrows(IllegalArgumentException.class, () -> full(LLAMA_1B).withMixedPrecision("tf32"));
  }

  private static long phase(MemoryPlan plan, String name) {
    return plan.phases().stream().filter(p -> p.name().equals(name)).findFirst().orElseThrow().bytes();
  }

  /** The same job as {@link #full} for a reward model. */
  static MemoryPlanner.Job reward(ModelConfig model, MemoryPlanner.Reference reference) {
    return new MemoryPlanner.Job(model, "bfloat16", null, false, "no", reference, "float32", 1, 1, 1024, 1000, 1,
        25L << 20, MemoryPlanner.CPU_OVERHEAD_BYTES, SessionSpec.Stage.REWARD);
  }

  @Test
  void aRewardModelOfLlama1BIsItsClassifierWithNoReferenceAndNoLogits() {
    MemoryPlan dpo = MemoryPlanner.plan(full(LLAMA_1B));
    MemoryPlan rm = MemoryPlanner.plan(reward(LLAMA_1B, MemoryPlanner.Reference.IN_LOOP));
    long params = 1_235_814_400L + 2048; // the tied embedding once, no LM head, score.weight [1, 2048]
    assertEquals(params, rm.job().model().numParameters());
    assertTrue(rm.job().model().scoresSequences());
    assertEquals(4 * params, rm.bytes(MemoryPlanner.WEIGHTS));
    assertEquals(12 * params, rm.bytes(MemoryPlanner.GRADIENTS) + rm.bytes(MemoryPlanner.OPTIMIZER));
    assertEquals(0, rm.bytes(MemoryPlanner.REFERENCE), "a reward model has no reference, whatever was asked");
    assertEquals(List.of("trunk forward", "score head forward", "backward", "optimizer step"),
        rm.phases().stream().map(MemoryPlan.Phase::name).toList());
    assertEquals(dpo.phases().get(0).bytes(), rm.phases().get(0).bytes(), "the same decoder trunk");
    // DPO's head phase holds 2 x 1000 response rows [R, d] and two [R, V] float32 arrays; the reward head holds the
    // 2 pooled rows [2, d] and their 2 scores.
    long r = 2 * 1000;
    long dpoHead = r * 2048 * 4 + 2 * r * 128_256L * 4;
    long rewardHead = 2 * 2048 * 4 + 2 * (4 + 4);
    assertEquals(dpo.phases().get(1).bytes() - dpoHead + rewardHead, rm.phases().get(1).bytes());
    assertTrue(rm.totalBytes() < dpo.totalBytes() - 2_000_000_000L, rm.totalBytes() + " vs DPO " + dpo.totalBytes());
  }

  @Test
  void aLoraRewardModelTrainsTheScoreHeadWholeBesideTheAdapters() {
    MemoryPlan plan = MemoryPlanner.plan(reward(LLAMA_8B, MemoryPlanner.Reference.NONE)
        .withLora(MemoryPlanner.Lora.allLinear(16)));
    long trainable = 41_943_040L + 4096; // PEFT's adapter count for Llama-3-8B r=16, plus score [1, 4096]
    assertEquals(4 * trainable, plan.bytes(MemoryPlanner.ADAPTERS));
    assertEquals(8 * trainable, plan.bytes(MemoryPlanner.OPTIMIZER));
    assertEquals(2 * (8_030_261_248L - 128_256L * 4096 + 4096), plan.bytes(MemoryPlanner.WEIGHTS),
        "the frozen bf16 base without its LM head");
    assertTrue(plan.items().stream().anyMatch(i -> i.how().contains("modules_to_save [score]")), plan.items().toString());
  }

  @Test
  void aRewardJobReadsTheRewardSection() {
    io.sparkdpo.config.JobConfig cfg = io.sparkdpo.config.ConfigLoader.load(null, List.of(
        "reward.per_device_train_batch_size=3", "reward.gradient_accumulation_steps=2", "reward.workers=2",
        "reward.gradient_checkpointing=true", "train.per_device_train_batch_size=1", "prepare.max_length=512",
        "model.dtype=bfloat16", "reward.peft.type=lora"));
    MemoryPlanner.Job job = MemoryPlanner.jobOf(cfg, LLAMA_1B, null, null, SessionSpec.Stage.REWARD);
    assertEquals(3, job.batchSize());
    assertEquals(2, job.gradientAccumulationSteps());
    assertEquals(2, job.workers());
    assertTrue(job.gradientCheckpointing());
    assertEquals(512, job.sequenceLength());
    assertEquals(MemoryPlanner.Reference.NONE, job.reference());
    assertEquals(SessionSpec.Stage.REWARD, job.stage());
    assertEquals("float32", job.baseDtype(), "a reward model's LoRA base loads in float32 (CausalLM.loadScorer)");
    assertEquals(List.of("score"), MemoryPlanner.savedModules(job));
    assertEquals(1, MemoryPlanner.jobOf(cfg, LLAMA_1B, null, null).batchSize(), "DPO still reads train");
  }
}
