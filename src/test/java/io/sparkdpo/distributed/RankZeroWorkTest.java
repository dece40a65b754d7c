package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Work rank 0 does alone ({@link AllReduce#onRankZero}): the others wait past the I/O timeout while its keepalives
 * arrive, and still fail within it when rank 0 goes silent.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RankZeroWorkTest {
  private static final RingOptions ONE_SECOND = RingOptions.defaults().withIoTimeout(Duration.ofSeconds(1))
      .withConnectTimeout(Duration.ofSeconds(20)).withRankZeroTimeout(Duration.ofSeconds(30));

  @Test
  void theOthersWaitPastTheIoTimeoutWhileRankZeroWorksAndTheRingStaysUsable() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(3, ONE_SECOND)) {
      List<InProcessRing.Outcome<float[]>> outcomes = ring.outcomes(g -> {
        boolean[] done = {false};
        g.onRankZero(g.rank() != 0 ? null : () -> {
          Thread.sleep(3_000); // three I/O timeouts
          done[0] = true;
        });
        assertEquals(g.rank() == 0, done[0]);
        FloatBuffer data = RingAllReduceTest.direct(new float[] {g.rank(), 10});
        g.allReduceMean(data); // the next collective lines up: same sequence numbers, nothing left on the wire
        g.onRankZero(g.rank() != 0 ? null : () -> { }); // and a quick one after it
        float[] out = new float[2];
        data.get(0, out);
        return out;
      }, 30);
      for (int r = 0; r < 3; r++) {
        InProcessRing.Outcome<float[]> o = outcomes.get(r);
        assertNull(o.error(), () -> "rank failed: " + o.error());
        assertArrayEquals(new float[] {1, 10}, o.value(), 0f);
        assertTrue(o.elapsedMillis() >= 3_000, "rank " + r + " went on after " + o.elapsedMillis() + " ms");
      }
    }
  }

  @Test
  void aRankZeroThatGoesSilentIsNoticedWithinTheIoTimeout() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(2, ONE_SECOND)) {
      var outcomes = ring.outcomes(g -> {
        if (g.rank() == 0) {
          Thread.sleep(6_000); // stuck elsewhere: no work started, no keepalives
          return null;
        }
        g.onRankZero(null);
        return null;
      }, 30);
      CollectiveException e = failedWithin(outcomes.get(1), 3_000);
      assertTrue(e.getMessage().startsWith("rank 1 of 2, onRankZero #1: no keepalive from rank 0 at "),
          e.getMessage());
      assertTrue(e.getMessage().contains("for 1000 ms while rank 0 works alone"), e.getMessage());
      assertEquals(0, e.peerRank());
    }
  }

  @Test
  void aRankZeroStillWorkingAtTheRankZeroTimeoutFailsTheOthers() throws Exception {
    RingOptions twoSeconds = ONE_SECOND.withRankZeroTimeout(Duration.ofSeconds(2));
    try (InProcessRing ring = InProcessRing.connect(2, twoSeconds)) {
      var outcomes = ring.outcomes(g -> {
        try {
          g.onRankZero(g.rank() != 0 ? null : () -> Thread.sleep(5_000));
        } finally {
          g.close(); // as the barrier task does when it fails
        }
        return null;
      }, 30);
      CollectiveException late = failedWithin(outcomes.get(1), 4_000);
      assertTrue(outcomes.get(1).elapsedMillis() >= 2_000, "waited only " + outcomes.get(1).elapsedMillis() + " ms");
      assertTrue(late.getMessage().contains("rank 0 kept sending keepalives but did not finish its work alone"
          + " (verifying or writing a checkpoint) within 2 s, the rank-0 timeout (save_timeout_s)"),
          late.getMessage());
      // Rank 0 finds the others gone when it tries to tell them it is done.
      assertInstanceOf(CollectiveException.class, outcomes.get(0).error());
    }
  }

  @Test
  void workThatFailsOnRankZeroFailsTheOthersAtOnceAndRankZeroRethrowsIt() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(3, ONE_SECOND.withIoTimeout(Duration.ofSeconds(20)))) {
      var outcomes = ring.outcomes(g -> {
        g.onRankZero(g.rank() != 0 ? null : () -> {
          Thread.sleep(200);
          throw new IOException("disk full");
        });
        return null;
      }, 30);
      assertEquals("disk full", assertInstanceOf(IOException.class, outcomes.get(0).error()).getMessage());
      for (int r = 1; r < 3; r++) {
        CollectiveException e = failedWithin(outcomes.get(r), 5_000);
        // Each learns rank 0's cause (from rank 0 or passed on by a neighbour), not just of a closed socket.
        assertTrue(e.getMessage().startsWith("rank " + r + " of 3, onRankZero #1: rank "), e.getMessage());
        assertTrue(e.getMessage().contains(" aborted the ring: rank 0 of 3, onRankZero #1: rank 0's work failed: "
            + "java.io.IOException: disk full"), e.getMessage());
      }
    }
  }

  private static CollectiveException failedWithin(InProcessRing.Outcome<?> outcome, long millis) {
    CollectiveException e = assertInstanceOf(CollectiveException.class, outcome.error(),
        () -> "expected a CollectiveException, got " + outcome.error());
    assertTrue(outcome.elapsedMillis() < millis, "failed only after " + outcome.elapsedMillis() + " ms: "
        + e.getMessage());
    return e;
  }
}
