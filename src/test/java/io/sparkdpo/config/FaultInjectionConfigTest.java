package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class FaultInjectionConfigTest {
  @Test
  void defaultsInjectNothingAndCheckReplicasEveryHundredSteps() {
    TrainSettings t = ConfigLoader.defaults().train();
    assertFalse(t.faultInjection().enabled());
    assertEquals(FaultInjectionSettings.Kind.NONE, t.faultInjection().kind());
    assertEquals(100, t.checksumSteps());
  }

  @Test
  void aFaultMustNameAnExistingWorkerAndAStep() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "train.workers=2", "train.fault_injection.kind=exception", "train.fault_injection.rank=2",
        "train.fault_injection.step=0", "train.checksum_steps=-1")));
    assertEquals(List.of("train.checksum_steps: must be >= 0 (got -1)",
        "train.fault_injection.rank: must name a worker, 0 to workers-1 (workers is 2) (got 2)",
        "train.fault_injection.step: must be > 0 (got 0)"), e.problems());
  }

  @Test
  void unknownFaultKindsListTheAllowedOnes() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("train.fault_injection.kind=crash")));
    assertTrue(e.getMessage().contains("[none, exception, exit]"), e.getMessage());
  }
}
