package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.spark.SparkConf;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.TaskResourceRequest;
import org.junit.jupiter.api.Test;

class ExecutorPlacementTest {
  private static SparkConf conf(String master, String... keyValues) {
    SparkConf conf = new SparkConf(false).setMaster(master);
    for (int i = 0; i < keyValues.length; i += 2) {
      conf.set(keyValues[i], keyValues[i + 1]);
    }
    return conf;
  }

  @Test
  void refusesDynamicAllocationWhateverTheWorkerCount() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> ExecutorPlacement.plan(
        conf("yarn", "spark.dynamicAllocation.enabled", "true"), 1, true));
    assertTrue(e.getMessage().startsWith("distributed training runs a Spark barrier stage, which Spark refuses"
        + " under dynamic allocation: set spark.dynamicAllocation.enabled=false"), e.getMessage());
  }

  @Test
  void refusesSeveralOwnJvmRanksOnALocalMasterButAllowsOneOrSharedJvmRanks() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> ExecutorPlacement.plan(conf("local[4]"), 2, true));
    assertTrue(e.getMessage().contains("master local[4] runs every task inside the driver JVM"), e.getMessage());
    assertNull(ExecutorPlacement.plan(conf("local[4]"), 1, true).profile());
    assertNull(ExecutorPlacement.plan(conf("local[4]"), 2, false).profile());
  }

  @Test
  void executorsWithRoomForOneTaskNeedNoProfile() {
    assertNull(ExecutorPlacement.plan(conf("local-cluster[2,1,1024]"), 2, true).profile());
    assertNull(ExecutorPlacement.plan(conf("spark://m:7077", "spark.executor.cores", "8", "spark.task.cpus", "8"),
        4, true).profile());
    assertNull(ExecutorPlacement.plan(conf("yarn"), 3, true).profile()); // YARN executors default to 1 core
  }

  @Test
  void executorsWithRoomForSeveralTasksGetAProfileAskingForAllTheirCores() {
    ResourceProfile p = ExecutorPlacement.plan(conf("local-cluster[2,2,1024]"), 2, true).profile();
    assertEquals(2.0, cpus(p));
    ResourceProfile k8s = ExecutorPlacement.plan(conf("k8s://https://api:6443", "spark.executor.cores", "16",
        "spark.task.cpus", "4"), 8, true).profile();
    assertEquals(16.0, cpus(k8s));
  }

  @Test
  void gpuExecutorsGiveEveryTaskOneGpuWhenTasksDoNotAskThemselves() {
    ExecutorPlacement.Plan plan = ExecutorPlacement.plan(conf("spark://m:7077", "spark.executor.cores", "4",
        "spark.executor.resource.gpu.amount", "1"), 2, true);
    assertEquals(1.0, plan.profile().taskResources().get("gpu").get().amount());
    assertEquals(4.0, cpus(plan.profile()));
    ExecutorPlacement.Plan asked = ExecutorPlacement.plan(conf("spark://m:7077", "spark.executor.cores", "1",
        "spark.executor.resource.gpu.amount", "1", "spark.task.resource.gpu.amount", "1"), 2, true);
    assertNull(asked.profile());
  }

  @Test
  void aStandaloneClusterOfUnknownExecutorSizeIsRefused() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> ExecutorPlacement.plan(conf("spark://m:7077"), 2, true));
    assertTrue(e.getMessage().startsWith("set spark.executor.cores (and spark.task.cpus) for distributed training"
        + " on spark://m:7077"), e.getMessage());
    IllegalStateException tooBig = assertThrows(IllegalStateException.class, () -> ExecutorPlacement.plan(
        conf("spark://m:7077", "spark.executor.cores", "2", "spark.task.cpus", "4"), 2, true));
    assertTrue(tooBig.getMessage().contains("no executor can run a training task"), tooBig.getMessage());
  }

  private static double cpus(ResourceProfile p) {
    TaskResourceRequest r = p.taskResources().get(ResourceProfile.CPUS()).get();
    return r.amount();
  }
}
