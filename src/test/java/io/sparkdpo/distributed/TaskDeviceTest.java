package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.util.Map;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

class TaskDeviceTest {
  private static Map<String, ResourceInformation> gpus(String... addresses) {
    return Map.of("gpu", new ResourceInformation("gpu", addresses));
  }

  @Test
  void gpuMeansTheFirstGpuAddressSparkAssignedToTheTask() {
    Device d = TaskDevice.select("gpu", gpus("3"));
    assertEquals(Device.Type.GPU, d.getDeviceType());
    assertEquals(3, d.getDeviceId());
  }

  @Test
  void cpuIgnoresAssignedGpusAndExplicitOrdinalWinsOverScheduling() {
    assertEquals(Device.cpu(), TaskDevice.select("cpu", gpus("0")));
    assertEquals(Device.cpu(), TaskDevice.select(null, Map.of()));
    assertEquals(1, TaskDevice.select("gpu:1", Map.of()).getDeviceId());
  }

  @Test
  void gpuWithoutAnAssignedGpuNamesTheSparkSettingsToSet() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> TaskDevice.select("gpu", Map.of()));
    assertTrue(e.getMessage().contains("spark.task.resource.gpu.amount=1"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> TaskDevice.select("gpu", gpus("GPU-abc")));
    assertThrows(IllegalArgumentException.class, () -> TaskDevice.select("tpu", Map.of()));
  }

  @Test
  void outsideASparkTaskThereAreNoResources() {
    assertEquals(Device.cpu(), TaskDevice.forCurrentTask("cpu"));
    assertThrows(IllegalStateException.class, () -> TaskDevice.forCurrentTask("gpu"));
  }
}
