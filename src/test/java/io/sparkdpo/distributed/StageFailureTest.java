package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.spark.SparkException;
import org.junit.jupiter.api.Test;

/** The driver's diagnosis picks the rank that saw the fault, not the ranks that only heard of it. */
class StageFailureTest {

  private static final String HUNG = "CollectiveException: rank 0 of 3, allReduceMean #41: rank 2 at /127.0.0.1:4002"
      + " is hung: this rank must still receive from it, and it sent nothing, neither data nor keepalive, for 60000 ms";
  private static final String ECHO = "CollectiveException: rank 1 of 3, allReduceMean #41: rank 0 at /127.0.0.1:4000"
      + " aborted the ring: rank 0 of 3, allReduceMean #41: rank 2 at /127.0.0.1:4002 is hung: ...";
  private static final String CLOSED = "CollectiveException: rank 1 of 3, allReduceMean #41: rank 0 at"
      + " /127.0.0.1:4000 closed its connection (it failed, was stopped, or left the group) [after sending 0 and"
      + " receiving 0 bytes of this collective]";

  @Test
  void aHungRankNamedByItsNeighbourIsTheRootCauseEvenWhenAnEchoArrivedFirst() {
    AttemptLog log = new AttemptLog(1);
    log.record(failed(1, 12, ECHO));
    log.record(failed(0, 12, HUNG));
    StageFailure f = StageFailure.diagnose(1, log, new SparkException("Job aborted due to stage failure"));
    assertEquals("rank 0 at step 12: " + HUNG, f.rootCause());
    assertTrue(f.retryable());
    assertTrue(f.describe().startsWith("attempt 1 failed before training: rank 0 at step 12: " + HUNG + "; Spark: "),
        f.describe());
  }

  @Test
  void aClosedConnectionRanksBelowWhatARankSawItselfAndAboveAnEcho() {
    AttemptLog log = new AttemptLog(2);
    log.record(failed(2, 5, ECHO));
    log.record(failed(1, 5, CLOSED));
    assertEquals("rank 1 at step 5: " + CLOSED, StageFailure.diagnose(2, log, new SparkException("x")).rootCause());
    log.record(failed(0, 5, HUNG));
    assertEquals("rank 0 at step 5: " + HUNG, StageFailure.diagnose(2, log, new SparkException("x")).rootCause());
  }

  @Test
  void aFailureOutsideTheRingComesFirst() {
    AttemptLog log = new AttemptLog(1);
    log.record(failed(0, 7, HUNG));
    log.record(failed(2, 7, "IllegalStateException: injected fault at rank 2, step 7"));
    assertEquals("rank 2 at step 7: IllegalStateException: injected fault at rank 2, step 7",
        StageFailure.diagnose(1, log, new SparkException("x")).rootCause());
  }

  private static TrackerEvent failed(int rank, long step, String detail) {
    return TrackerEvent.of(TrackerEvent.FAILED, step).withDetail(detail, true).from(1, rank);
  }
}
