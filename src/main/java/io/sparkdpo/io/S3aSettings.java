package io.sparkdpo.io;

import io.sparkdpo.config.S3Settings;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;

/** The one place that knows how {@link S3Settings} become Hadoop s3a properties. */
public final class S3aSettings {
  private S3aSettings() {}

  /** Hadoop property names and values (without Spark's {@code spark.hadoop.} prefix). */
  public static Map<String, String> hadoopProperties(S3Settings s3) {
    Map<String, String> p = new LinkedHashMap<>();
    if (s3 == null) {
      return p;
    }
    if (s3.endpoint() != null) {
      p.put("fs.s3a.endpoint", s3.endpoint());
    }
    if (s3.region() != null) {
      p.put("fs.s3a.endpoint.region", s3.region());
    }
    p.put("fs.s3a.path.style.access", Boolean.toString(s3.pathStyleAccess()));
    p.put("fs.s3a.connection.ssl.enabled", Boolean.toString(s3.ssl()));
    if (s3.hasStaticCredentials()) {
      p.put("fs.s3a.access.key", s3.accessKey());
      p.put("fs.s3a.secret.key", s3.secretKey());
      if (s3.sessionToken() != null) {
        p.put("fs.s3a.session.token", s3.sessionToken());
        p.put("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider");
      } else {
        p.put("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider");
      }
    }
    return p;
  }

  /** A Hadoop configuration for code that reads or writes outside Spark (drivers, executors, tests). */
  public static Configuration hadoopConfiguration(S3Settings s3) {
    Configuration conf = new Configuration();
    hadoopProperties(s3).forEach(conf::set);
    return conf;
  }
}
