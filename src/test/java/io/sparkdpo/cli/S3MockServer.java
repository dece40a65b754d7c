package io.sparkdpo.cli;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * An S3Mock server in its own JVM (the exec jar the pom copies to target/test-servers), on free ports so tests
 * on a shared machine do not collide, with one bucket. Stopped by {@link #close()}.
 */
final class S3MockServer implements AutoCloseable {
  private final Process process;
  private final int port;
  private final Path log;

  private S3MockServer(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
  }

  static S3MockServer start(String bucket, Path root, Duration timeout) throws IOException, InterruptedException {
    Path jar = Path.of(System.getProperty("project.build.directory", "target"), "test-servers", "s3mock-exec.jar");
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException(jar + " is missing: run mvn generate-test-resources (the pom copies it)");
    }
    int http = freePort();
    int https = freePort();
    Path log = root.resolve("s3mock.log");
    Path store = Files.createDirectories(root.resolve("store"));
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx512m", "-jar", jar.toString(), "--server.address=127.0.0.1",
        "--com.adobe.testing.s3mock.httpPort=" + http, "--server.port=" + https));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().put("COM_ADOBE_TESTING_S3MOCK_STORE_INITIAL_BUCKETS", bucket);
    pb.environment().put("COM_ADOBE_TESTING_S3MOCK_STORE_ROOT", store.toString());
    S3MockServer server = new S3MockServer(pb.start(), http, log);
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!server.ready()) {
      if (!server.process.isAlive() || System.nanoTime() > deadline) {
        String tail = Files.exists(log) ? Files.readString(log) : "";
        server.close();
        throw new IllegalStateException("S3Mock did not start within " + timeout + ":\n"
            + tail.substring(Math.max(0, tail.length() - 2000)));
      }
      Thread.sleep(250);
    }
    return server;
  }

  String endpoint() {
    return "http://127.0.0.1:" + port;
  }

  private boolean ready() {
    try {
      HttpURLConnection c = (HttpURLConnection) URI.create(endpoint() + "/").toURL().openConnection();
      c.setConnectTimeout(500);
      c.setReadTimeout(1000);
      int code = c.getResponseCode();
      c.disconnect();
      return code > 0;
    } catch (IOException e) {
      return false;
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }
}
