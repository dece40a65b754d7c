package io.sparkdpo.config;

/**
 * The whole configuration of spark-dpo. Every job reads the sections it needs; a job's YAML file sets only
 * those. Defaults live in {@code defaults.yaml} next to this class, which also lists every key.
 */
public record JobConfig(
    SparkSettings spark,
    StorageSettings storage,
    PrepareSettings prepare,
    ModelSettings model,
    SftSettings sft,
    TrainSettings train,
    EvaluateSettings evaluate,
    ReferenceSettings reference,
    GenerateSettings generate,
    PipelineSettings pipeline,
    RewardSettings reward,
    PpoSettings ppo,
    ScoreSettings score) implements Validated {

  @Override
  public void validate(String prefix, Violations v) {
    spark.validate("spark", v);
    storage.validate("storage", v);
    prepare.validate("prepare", v);
    model.validate("model", v);
    sft.validate("sft", v);
    train.validate("train", v);
    evaluate.validate("evaluate", v);
    reference.validate("reference", v);
    generate.validate("generate", v);
    pipeline.validate("pipeline", v);
    reward.validate("reward", v);
    ppo.validate("ppo", v);
    score.validate("score", v);
  }
}
