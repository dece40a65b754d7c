package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

class BarrierWorkerTest {
  @Test
  void theTaskDeviceIsItsFirstAssignedGpuElseTheCpu() {
    assertEquals("gpu:3", BarrierWorker.device(Map.of("gpu", new ResourceInformation("gpu", new String[] {"3", "5"}))));
    assertEquals("cpu", BarrierWorker.device(Map.of("gpu", new ResourceInformation("gpu", new String[0]))));
    assertEquals("cpu", BarrierWorker.device(Map.of()));
  }

  @Test
  void tasksSeeTheJobsHadoopSettingsAsSparkShipsThem() {
    SparkConf conf = new SparkConf(false).set("spark.hadoop.fs.s3a.endpoint", "http://127.0.0.1:9090")
        .set("spark.executor.cores", "2");
    Configuration hadoop = BarrierWorker.hadoopConf(conf);
    assertEquals("http://127.0.0.1:9090", hadoop.get("fs.s3a.endpoint"));
    assertNull(hadoop.get("spark.executor.cores"));
    assertNull(hadoop.get("executor.cores"));
  }

  @Test
  void failureReportsNameEveryCauseInOneLine() {
    Exception e = new IllegalStateException("step 3 failed", new java.io.IOException("disk full"));
    assertEquals("IllegalStateException: step 3 failed <- IOException: disk full", BarrierWorker.describe(e));
  }
}
