package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The drill as a test: during a W = 2 barrier run ({@code local[2]}, the synthetic trainer), every ring
 * listener gets idle connections, garbage, an old-style greeting and a forged handshake (a proof under another key)
 * the moment it opens, ahead of the real neighbour. The run completes in one attempt with the bits of an undisturbed
 * run, and no intruder is told anything but a random nonce. (Before the handshake, one idle connection per listener
 * failed every attempt.)
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RingIntruderDrillTest {
  private static final SyntheticRegressionTask TASK = SyntheticRegressionTask.standard(false);
  private static final Pattern LISTENER = Pattern.compile("ring listener on (.+):(\\d+)$");
  private static List<List<String>> shards;

  @TempDir
  static Path tmp;

  @BeforeAll
  static void writeShards() {
    shards = SyntheticRunSpecs.writeShards(tmp.resolve("data"), TASK);
  }

  @Test
  void aW2RunWithIntrudersAtEveryRingPortCompletesWithTheUndisturbedResult() throws Exception {
    Intruders intruders = new Intruders();
    RunOutcome outcome;
    intruders.attach();
    try {
      outcome = new BarrierStageRunner(SharedSpark.get(),
          SyntheticRunSpecs.spec(tmp, "attacked", shards, 2, FaultPlan.NONE, 1), TASK).run();
    } finally {
      intruders.detach();
    }
    InProcessRun.Result plain = InProcessRun.run(TASK, tmp.resolve("plain").toUri().toString(),
        SyntheticRunSpecs.plan(shards, 2), SyntheticRunSpecs.SCHEDULE, FaultPlan.NONE);

    assertEquals(1, outcome.attempts(), outcome.failures().toString());
    assertEquals(20, outcome.stepsDone());
    assertEquals(plain.completed(0).checksum(), outcome.checksum());
    assertArrayEquals(SyntheticRegressionTask.weightsAt(tmp.resolve("plain").toUri().toString(), 20),
        SyntheticRegressionTask.weightsAt(tmp.resolve("attacked").toString(), 20));

    assertEquals(2, intruders.ports.size(), "ring listeners attacked: " + intruders.ports);
    assertEquals(2, intruders.forged.size());
    for (Future<RingIntruder.Told> f : intruders.forged) {
      RingIntruder.Told told = f.get(30, TimeUnit.SECONDS);
      assertEquals(RingHandshake.NONCE_BYTES, told.nonce().length);
      assertArrayEquals(new byte[0], told.afterProof(), "a forged proof was answered");
    }
    for (Socket s : intruders.sockets) {
      assertArrayEquals(new byte[0], RingIntruder.untilClosed(s), "an intruder was told something");
    }
    RingIntruder.closeAll(intruders.sockets);
  }

  /**
   * Reads each rank's "ring listener on host:port" log line and attacks that port at once, on the task's own
   * thread, so the intruders reach the listener's queue before the neighbour dials (about a second later, after
   * the all-gather).
   */
  private static final class Intruders extends AbstractAppender {
    final Set<Integer> ports = new TreeSet<>();
    final List<Socket> sockets = new CopyOnWriteArrayList<>();
    final List<Future<RingIntruder.Told>> forged = new CopyOnWriteArrayList<>();
    private final ExecutorService threads = Executors.newCachedThreadPool();

    Intruders() {
      super("ring-intruders-" + System.nanoTime(), null, null, true, Property.EMPTY_ARRAY);
    }

    @Override
    public void append(LogEvent event) {
      Matcher m = LISTENER.matcher(event.getMessage().getFormattedMessage());
      if (!m.find()) {
        return;
      }
      InetSocketAddress listener = new InetSocketAddress(m.group(1), Integer.parseInt(m.group(2)));
      synchronized (ports) {
        ports.add(listener.getPort());
      }
      try {
        sockets.add(RingIntruder.idle(listener));
        sockets.add(RingIntruder.idle(listener));
        sockets.add(RingIntruder.sending(listener, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII)));
        sockets.add(RingIntruder.sending(listener, new byte[] {'R', 'I', 'N', 'G'}));
        sockets.add(RingIntruder.sending(listener, RingIntruder.oldGreeting(0, 2, 1, 0)));
        // The forger says hello now (queued ahead of the neighbour) and finishes once the listener serves.
        byte[] nonce = RunSecret.nonce(RingHandshake.NONCE_BYTES);
        Socket hello = RingIntruder.sending(listener, RingHandshake.hello(nonce).array());
        RunSecret wrongKey = RunSecret.random();
        forged.add(threads.submit(() -> RingIntruder.prove(hello, nonce,
            (c, l) -> RingHandshake.connectorProof(wrongKey, c, l, 0, 2, 1, 0))));
      } catch (IOException e) {
        throw new IllegalStateException("could not reach the ring listener at " + listener, e);
      }
    }

    void attach() {
      start();
      LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
      Configuration config = ctx.getConfiguration();
      config.addAppender(this);
      config.getRootLogger().addAppender(this, Level.ALL, null);
      config.getLoggers().values().forEach(l -> {
        if (!l.isAdditive()) {
          l.addAppender(this, Level.ALL, null);
        }
      });
      ctx.updateLoggers();
    }

    void detach() {
      LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
      Configuration config = ctx.getConfiguration();
      config.getRootLogger().removeAppender(getName());
      config.getLoggers().values().forEach(l -> l.removeAppender(getName()));
      ctx.updateLoggers();
      threads.shutdown();
      stop();
    }
  }
}
