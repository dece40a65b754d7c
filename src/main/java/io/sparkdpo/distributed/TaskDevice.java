package io.sparkdpo.distributed;

import ai.djl.Device;
import java.util.Map;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * Picks the DJL device a Spark task computes on. With GPU scheduling on ({@code spark.task.resource.gpu.amount=1},
 * a discovery script on the executors), Spark hands each task the GPU addresses it may use; the first one is
 * the CUDA ordinal the task uses, so two tasks on one machine never share a GPU. See docs/gpu.md.
 */
public final class TaskDevice {
  /** The resource name Spark's GPU scheduling uses. */
  public static final String GPU = "gpu";

  private TaskDevice() {}

  /** The device for the task running on this thread (the driver and non-Spark code get no task resources). */
  public static Device forCurrentTask(String modelDevice) {
    TaskContext ctx = TaskContext.get();
    return select(modelDevice, ctx == null ? Map.of() : ctx.resourcesJMap());
  }

  /**
   * @param modelDevice {@code model.device}: {@code cpu}, {@code gpu} (the task's assigned GPU) or {@code gpu:N}
   *     (ordinal N, for a single-process run outside Spark's scheduling)
   * @param resources the task's resources ({@code TaskContext.resources()})
   */
  public static Device select(String modelDevice, Map<String, ResourceInformation> resources) {
    String d = modelDevice == null ? "cpu" : modelDevice.trim().toLowerCase();
    if (d.equals("cpu")) {
      return Device.cpu();
    }
    if (d.startsWith("gpu:")) {
      return Device.gpu(Integer.parseInt(d.substring(4)));
    }
    if (!d.equals(GPU)) {
      throw new IllegalArgumentException("model.device: '" + modelDevice + "' is not cpu, gpu or gpu:N");
    }
    ResourceInformation gpu = resources.get(GPU);
    if (gpu == null || gpu.addresses().length == 0) {
      throw new IllegalStateException("model.device=gpu, but this task was given no GPU: set "
          + "spark.task.resource.gpu.amount=1, spark.executor.resource.gpu.amount=1 and "
          + "spark.executor.resource.gpu.discoveryScript (deploy/gpu/getGpusResources.sh)");
    }
    String address = gpu.addresses()[0];
    try {
      return Device.gpu(Integer.parseInt(address.trim()));
    } catch (NumberFormatException e) {
      throw new IllegalStateException("GPU address '" + address + "' from Spark is not a CUDA ordinal: the "
          + "discovery script must print indices (nvidia-smi --query-gpu=index)", e);
    }
  }
}
