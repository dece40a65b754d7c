package io.sparkdpo.config;

/**
 * s3a settings. Keys left null fall back to the AWS default chain (environment, instance profile), which is
 * what a cluster should use; explicit keys exist for test servers and are always redacted in logs, manifests and
 * {@link #toString()}.
 */
public record S3Settings(
    String endpoint,
    String region,
    boolean pathStyleAccess,
    boolean ssl,
    String accessKey,
    String secretKey,
    String sessionToken) implements Validated {

  public boolean hasStaticCredentials() {
    return accessKey != null && secretKey != null;
  }

  /** The keys hidden: a record printed in a log line or an exception message must not carry them. */
  @Override
  public String toString() {
    return "S3Settings[endpoint=" + endpoint + ", region=" + region + ", pathStyleAccess=" + pathStyleAccess
        + ", ssl=" + ssl + ", accessKey=" + Redaction.hidden(accessKey) + ", secretKey=" + Redaction.hidden(secretKey)
        + ", sessionToken=" + Redaction.hidden(sessionToken) + "]";
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.require((accessKey == null) == (secretKey == null), prefix + ".access_key/secret_key",
        "must be set together or both left null", accessKey == null ? "only secret_key" : "only access_key");
  }
}
