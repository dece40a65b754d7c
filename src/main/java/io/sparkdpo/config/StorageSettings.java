package io.sparkdpo.config;

/** Where data lives beyond the local disk. */
public record StorageSettings(S3Settings s3) implements Validated {
  @Override
  public void validate(String prefix, Violations v) {
    s3.validate(prefix + ".s3", v);
  }
}
