package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.FaultInjectionSettings.Kind;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FaultInjectorTest {
  @TempDir
  Path run;

  @Test
  void firesOnItsRankBeforeItsStepOnlyOncePerRun() throws Exception {
    FaultPlan plan = new FaultPlan(Kind.EXCEPTION, 1, 3);
    Storage storage = Storage.local();
    FaultInjector rank0 = new FaultInjector(plan, 0, storage, run.toString());
    FaultInjector rank1 = new FaultInjector(plan, 1, storage, run.toString());
    rank0.beforeStep(3);
    rank1.beforeStep(2);
    FaultInjector.InjectedFault fault = assertThrows(FaultInjector.InjectedFault.class, () -> rank1.beforeStep(3));
    assertEquals("injected fault (train.fault_injection): exception on rank 1 before step 3", fault.getMessage());
    Path marker = run.resolve("faults/rank-1-step-3-exception.fired");
    assertTrue(Files.readString(marker).startsWith(fault.getMessage() + ", fired at "));

    // The resubmitted attempt (a new injector, possibly another JVM) passes the same step.
    assertDoesNotThrow(() -> new FaultInjector(plan, 1, storage, run.toString()).beforeStep(3));
  }

  @Test
  void theConfigKeysBecomeTheRunsFaultPlan() {
    assertEquals(FaultPlan.NONE, FaultPlan.of(ConfigLoader.defaults().train().faultInjection()));
    FaultPlan plan = FaultPlan.of(ConfigLoader.load(null, List.of("train.workers=2",
        "train.fault_injection.kind=exit", "train.fault_injection.rank=1", "train.fault_injection.step=40"))
        .train().faultInjection());
    assertEquals(new FaultPlan(Kind.EXIT, 1, 40), plan);
    assertEquals("exit on rank 1 before step 40", plan.toString());
  }
}
