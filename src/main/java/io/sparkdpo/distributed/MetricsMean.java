package io.sparkdpo.distributed;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Weighted means of every rank's {@link LocalMetrics}: one small all-reduce, identical result on every rank. */
final class MetricsMean {
  private MetricsMean() {}

  /**
   * @return metric name to the mean over ranks weighted by {@link LocalMetrics#weight()}; empty when no rank
   *     had anything to report
   * @throws IllegalStateException when ranks report different metric names (a rank with nothing to report
   *     still names the metrics, with weight 0)
   */
  static Map<String, Double> across(AllReduce group, LocalMetrics local) {
    List<String> names = new ArrayList<>(local.values().keySet());
    Collections.sort(names);
    // [weight, weight * value..., names hash]: the hash sums to W * hash only when every rank has these names.
    double[] v = new double[names.size() + 2];
    v[0] = local.weight();
    for (int i = 0; i < names.size(); i++) {
      v[i + 1] = local.weight() == 0 ? 0 : local.weight() * local.values().get(names.get(i));
    }
    double namesHash = names.hashCode() & 0x7FFF_FFFF;
    v[v.length - 1] = namesHash;
    group.allReduceSum(v);
    if (v[v.length - 1] != namesHash * group.worldSize()) {
      throw new IllegalStateException("rank " + group.rank() + " reports metrics " + names
          + " but another rank reports different names; every rank must report the same metrics");
    }
    Map<String, Double> mean = new TreeMap<>();
    if (v[0] == 0) {
      return mean;
    }
    for (int i = 0; i < names.size(); i++) {
      mean.put(names.get(i), v[i + 1] / v[0]);
    }
    return mean;
  }
}
