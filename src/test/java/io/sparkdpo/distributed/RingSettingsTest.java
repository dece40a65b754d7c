package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The stages' ring keys reach the tasks' ring options; nonsense is refused on the driver, naming the key. */
class RingSettingsTest {

  @Test
  void theDefaultsAreTheRingsAndTheBucketIsPyTorchDdps() {
    JobConfig cfg = ConfigLoader.defaults();
    for (var stage : List.of(cfg.train(), cfg.sft())) {
      RunSecret secret = RunSecret.random();
      RingOptions o = RingSettings.of(stage).toOptions(7, secret);
      assertEquals(Duration.ofMinutes(5), o.ioTimeout());
      assertEquals(Duration.ofMinutes(2), o.connectTimeout());
      assertEquals(Duration.ofHours(1), o.rankZeroTimeout());
      assertEquals(Duration.ofSeconds(60), o.peerTimeout(), "half of Spark's 120 s heartbeat timeout");
      assertEquals(Duration.ofSeconds(5), o.keepaliveInterval());
      assertEquals(7, o.session());
      assertSame(secret, o.secret());
      assertEquals(Duration.ofSeconds(10), o.handshakeTimeout());
      assertEquals(25L << 20, stage.allreduceBucketBytes());
    }
  }

  @Test
  void eachStageShipsItsOwnTimeouts() {
    JobConfig cfg = ConfigLoader.load(null, List.of("train.ring_io_timeout_s=2", "train.ring_connect_timeout_s=30",
        "train.save_timeout_s=900", "sft.ring_io_timeout_s=600", "sft.save_timeout_s=7200",
        "train.allreduce_bucket_mb=0.5", "train.ring_handshake_timeout_s=3"));
    RingOptions train = RingSettings.of(cfg.train()).toOptions(0, RunSecret.random());
    assertEquals(Duration.ofSeconds(2), train.ioTimeout());
    assertEquals(Duration.ofSeconds(30), train.connectTimeout());
    assertEquals(Duration.ofSeconds(900), train.rankZeroTimeout());
    assertEquals(Duration.ofSeconds(3), train.handshakeTimeout());
    assertEquals(Duration.ofSeconds(2), train.peerTimeout(), "capped at the I/O timeout");
    assertEquals(Duration.ofMillis(500), train.keepaliveInterval(), "4 keepalives per peer timeout");
    assertEquals(512L << 10, cfg.train().allreduceBucketBytes());
    RingOptions sft = RingSettings.of(cfg.sft()).toOptions(0, RunSecret.random());
    assertEquals(Duration.ofSeconds(600), sft.ioTimeout());
    assertEquals(Duration.ofSeconds(7200), sft.rankZeroTimeout());
    assertEquals(Duration.ofSeconds(10), sft.handshakeTimeout());
    assertEquals(Duration.ofSeconds(60), sft.peerTimeout());
  }

  @Test
  void thePeerTimeoutKeyReachesTheTasksAndSetsTheKeepalives() {
    JobConfig cfg = ConfigLoader.load(null, List.of("train.ring_peer_timeout_s=8"));
    RunSecret secret = RunSecret.random();
    RingOptions o = RingSettings.of(cfg.train()).toOptions(0, secret);
    assertEquals(Duration.ofSeconds(8), o.peerTimeout());
    assertEquals(Duration.ofSeconds(300), o.ioTimeout());
    assertEquals(Duration.ofSeconds(2), o.keepaliveInterval());
    assertEquals(o, RingSettings.of(o).toOptions(0, secret), "the settings carry every option to the tasks");
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("sft.ring_peer_timeout_s=0")));
    assertTrue(e.problems().contains("sft.ring_peer_timeout_s: must be > 0 (got 0)"), e.problems().toString());
    assertThrows(IllegalArgumentException.class,
        () -> RingOptions.defaults().withIoTimeout(Duration.ofSeconds(10)).withPeerTimeout(Duration.ofSeconds(11)));
  }

  @Test
  void timeoutsAndBucketsOutsideTheirRangesAreRefused() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "train.ring_io_timeout_s=0", "sft.save_timeout_s=10", "sft.allreduce_bucket_mb=2048",
        "train.allreduce_bucket_mb=0", "sft.ring_handshake_timeout_s=0")));
    assertEquals(List.of(
        "sft.allreduce_bucket_mb: must hold at least one float and less than 2048 MiB (got 2048.0)",
        "sft.ring_handshake_timeout_s: must be > 0 (got 0)",
        "sft.save_timeout_s: must be at least ring_io_timeout_s (300) (got 10)",
        "train.allreduce_bucket_mb: must hold at least one float and less than 2048 MiB (got 0.0)",
        "train.ring_io_timeout_s: must be > 0 (got 0)"), e.problems().stream().sorted().toList());
  }
}
