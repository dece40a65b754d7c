package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class TrainConfigTest {
  private static ConfigException rejected(String... overrides) {
    return assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(overrides)));
  }

  @Test
  void defaultsAreTrlDefaults() {
    JobConfig cfg = ConfigLoader.defaults();
    TrainSettings t = cfg.train();
    assertEquals(0.1, t.beta());
    assertEquals(List.of(TrainSettings.LossType.SIGMOID), t.lossType());
    assertEquals(0.0, t.labelSmoothing());
    assertEquals(1.0e-6, t.learningRate());
    assertEquals(LrSchedulerType.LINEAR, t.lrSchedulerType());
    assertEquals(0.9, t.adamBeta1());
    assertEquals(0.999, t.adamBeta2());
    assertEquals(1.0e-8, t.adamEpsilon());
    assertEquals(1.0, t.maxGradNorm());
    assertEquals(-1, t.maxSteps());
    assertNull(t.saveTotalLimit());
    assertEquals(TrainSettings.ReferenceMode.PRECOMPUTED, t.referenceMode());
    SftSettings s = cfg.sft();
    assertEquals(2.0e-5, s.learningRate());
    assertTrue(s.completionOnlyLoss());
    assertEquals("runs/sft", s.outputDir());
  }

  @Test
  void overridesBindEnumsAndNullableLimits() {
    JobConfig cfg = ConfigLoader.load(null, List.of("train.loss_type=robust", "train.label_smoothing=0.2",
        "train.save_total_limit=3", "train.lr_scheduler_type=cosine", "train.reference_mode=in_loop",
        "sft.lr_scheduler_type=constant_with_warmup", "sft.completion_only_loss=false"));
    assertEquals(List.of(TrainSettings.LossType.ROBUST), cfg.train().lossType());
    assertEquals(0.2, cfg.train().labelSmoothing());
    assertEquals(3, cfg.train().saveTotalLimit());
    assertEquals(LrSchedulerType.COSINE, cfg.train().lrSchedulerType());
    assertEquals(TrainSettings.ReferenceMode.IN_LOOP, cfg.train().referenceMode());
    assertEquals(LrSchedulerType.CONSTANT_WITH_WARMUP, cfg.sft().lrSchedulerType());
    assertEquals(false, cfg.sft().completionOnlyLoss());
  }

  @Test
  void lossTypeTakesOneNameOrAWeightedListAsInTrl() {
    JobConfig defaults = ConfigLoader.defaults();
    assertNull(defaults.train().lossWeights());
    assertNull(defaults.train().rpoAlpha());
    assertEquals(0.05, defaults.train().discopopTau());
    JobConfig cfg = ConfigLoader.load(null, List.of("train.loss_type=[sigmoid, bco_pair, apo_zero]",
        "train.loss_weights=[0.8, 0.2, 1.0]", "train.rpo_alpha=1.0", "train.discopop_tau=0.1"));
    assertEquals(List.of(TrainSettings.LossType.SIGMOID, TrainSettings.LossType.BCO_PAIR,
        TrainSettings.LossType.APO_ZERO), cfg.train().lossType());
    assertEquals(List.of(0.8, 0.2, 1.0), cfg.train().lossWeights());
    assertEquals(1.0, cfg.train().rpoAlpha());
    assertEquals(0.1, cfg.train().discopopTau());
    assertEquals(List.of(TrainSettings.LossType.EXO_PAIR),
        ConfigLoader.load(null, List.of("train.loss_type=exo_pair", "train.label_smoothing=0.1")).train().lossType());
  }

  @Test
  void lossSettingsThatCannotWorkAreRefusedNamingTheKey() {
    ConfigException e = rejected("train.loss_type=[sigmoid, ipo]", "train.loss_weights=[1.0]");
    assertTrue(e.getMessage().contains("train.loss_weights: needs one weight per loss_type entry (sigmoid, ipo)"),
        e.getMessage());
    e = rejected("train.loss_type=[sigmoid, kto_pair]");
    assertTrue(e.getMessage().contains("train.loss_type[1]: 'kto_pair' is not allowed"), e.getMessage());
    e = rejected("train.loss_type=bco_pair", "train.workers=2");
    assertTrue(e.getMessage().contains("train.workers: loss_type bco_pair runs on one worker only"), e.getMessage());
    e = rejected("train.loss_type=[apo_zero, nca_pair]", "train.label_smoothing=0.1");
    assertTrue(e.getMessage().contains("train.label_smoothing: applies to loss_type"), e.getMessage());
    e = rejected("train.rpo_alpha=-1");
    assertTrue(e.getMessage().contains("train.rpo_alpha: must be null (no NLL term) or a finite number >= 0"),
        e.getMessage());
    e = rejected("train.discopop_tau=0");
    assertTrue(e.getMessage().contains("train.discopop_tau: must be a finite number > 0"), e.getMessage());
    e = rejected("train.loss_type=[]");
    assertTrue(e.getMessage().contains("train.loss_type: must name one loss type or a list of them"), e.getMessage());
  }

  @Test
  void mixedPrecisionDefaultsToNoAndTakesBf16OrFp16() {
    JobConfig defaults = ConfigLoader.defaults();
    assertEquals(MixedPrecision.NO, defaults.train().mixedPrecision(), "YAML's unquoted no (a boolean in YAML 1.1)");
    assertEquals(MixedPrecision.NO, defaults.sft().mixedPrecision());
    JobConfig cfg = ConfigLoader.load(null, List.of("train.mixed_precision=bf16", "sft.mixed_precision=fp16"));
    assertEquals(MixedPrecision.BF16, cfg.train().mixedPrecision());
    assertEquals(MixedPrecision.FP16, cfg.sft().mixedPrecision());
    assertEquals(MixedPrecision.NO, ConfigLoader.load(null, List.of("train.mixed_precision=no")).train()
        .mixedPrecision());
    ConfigException e = rejected("train.mixed_precision=fp8");
    assertTrue(e.getMessage().contains("train.mixed_precision"), e.getMessage());
    assertTrue(e.getMessage().contains("no, bf16 or fp16"), e.getMessage());
  }

  @Test
  void gradientCheckpointingRefusesLoraDropoutButTakesLoraWithout() {
    ConfigException e = rejected("train.gradient_checkpointing=true", "train.peft.type=lora", "train.peft.dropout=0.05");
    assertEquals(1, e.problems().size(), e.getMessage());
    assertTrue(e.problems().get(0).startsWith("train.gradient_checkpointing: cannot be combined with LoRA dropout"),
        e.getMessage());
    JobConfig ok = ConfigLoader.load(null, List.of("sft.gradient_checkpointing=true", "sft.peft.type=lora",
        "sft.peft.dropout=0"));
    assertTrue(ok.sft().gradientCheckpointing());
    assertEquals(0.0, ok.sft().peft().dropout());
    assertTrue(ConfigLoader.load(null, List.of("train.peft.type=lora", "train.peft.dropout=0.05")).train().peft()
        .dropout() > 0, "dropout without checkpointing is fine");
  }

  @Test
  void labelSmoothingMustBeBelowOneHalf() {
    ConfigException e = rejected("train.label_smoothing=0.5");
    assertEquals(List.of("train.label_smoothing: must be in [0.0, 0.5) (got 0.5)"), e.problems());
    rejected("train.label_smoothing=-0.1");
  }

  @Test
  void labelSmoothingIsRefusedForLossTypesThatIgnoreIt() {
    ConfigException e = rejected("train.loss_type=ipo", "train.label_smoothing=0.1");
    assertTrue(e.getMessage().contains("train.label_smoothing: applies to loss_type sigmoid, robust, reference_free, "
        + "exo_pair, aot or aot_pair only (loss_type is ipo) (got 0.1)"), e.getMessage());
  }

  @Test
  void unknownLossTypeListsTrlNames() {
    ConfigException e = rejected("train.loss_type=kto");
    assertTrue(e.getMessage().contains("train.loss_type[0]: 'kto' is not allowed"), e.getMessage());
    assertTrue(e.getMessage().contains("[sigmoid, robust, ipo, hinge, reference_free, exo_pair, nca_pair, bco_pair, "
        + "sppo_hard, aot, aot_pair, apo_zero, apo_down, discopop]"), e.getMessage());
  }

  @Test
  void everyOutOfRangeKeyIsNamed() {
    ConfigException e = rejected("train.beta=0", "train.adam_beta2=1.0", "train.adam_epsilon=0",
        "train.max_steps=0", "train.save_total_limit=0", "train.workers=0", "train.gradient_accumulation_steps=0",
        "train.warmup_ratio=1.0", "train.max_grad_norm=-1", "train.num_train_epochs=0", "train.logging_steps=0",
        "train.output_dir=''", "sft.learning_rate=-1e-5", "sft.per_device_train_batch_size=0",
        "sft.max_attempts=0");
    String m = e.getMessage();
    for (String key : List.of("train.beta:", "train.adam_beta2: must be in [0.0, 1.0) (got 1.0)",
        "train.adam_epsilon:", "train.max_steps: must be -1 (use epochs) or > 0 (got 0)",
        "train.save_total_limit: must be null (keep all) or >= 1 (got 0)", "train.workers:",
        "train.gradient_accumulation_steps:", "train.warmup_ratio:", "train.max_grad_norm:",
        "train.num_train_epochs:", "train.logging_steps:", "train.output_dir:", "sft.learning_rate:",
        "sft.per_device_train_batch_size:", "sft.max_attempts:")) {
      assertTrue(m.contains(key), key + " missing in: " + m);
    }
    assertEquals(15, e.problems().size(), m);
  }

  @Test
  void warmupStepsAndRatioAreExclusive() {
    ConfigException e = rejected("sft.warmup_steps=10", "sft.warmup_ratio=0.1");
    assertTrue(e.getMessage().contains("sft.warmup_ratio: set warmup_steps or warmup_ratio, not both"),
        e.getMessage());
  }
}
