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
    EvaluateSettings evaluate) implements Validated {

  @Override
  public void validate(String prefix, Violations v) {
    spark.validate("spark", v);
    storage.validate("storage", v);
    prepare.validate("prepare", v);
    model.validate("model", v);
    evaluate.validate("evaluate", v);
  }
}
