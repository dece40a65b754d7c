package io.sparkdpo.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import scala.collection.Iterator;
import scala.collection.Iterator$;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

@Timeout(value = 240, unit = TimeUnit.SECONDS)
class LocalClusterSparkTest {
  private static LocalClusterSpark cluster;

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  static void startTwoExecutors() {
    cluster = LocalClusterSpark.start(2, 768);
  }

  @AfterAll
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void tasksRunInTwoDistinctExecutorJvmsApartFromTheDriver() {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(cluster.session().sparkContext());
    List<Long> pids = jsc.parallelize(Arrays.asList(0, 1, 2, 3, 4, 5), 6)
        .map(i -> {
          Thread.sleep(300); // keeps both executors busy, so the scheduler uses both
          return ProcessHandle.current().pid();
        })
        .collect();
    Set<Long> distinct = new HashSet<>(pids);
    assertEquals(6, pids.size());
    assertEquals(2, distinct.size(), "executor PIDs " + pids);
    assertFalse(distinct.contains(ProcessHandle.current().pid()), "a task ran in the driver JVM");
  }

  @Test
  void barrierStageOfTwoTasksGathersEveryTasksMessage() {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(cluster.session().sparkContext());
    RDD<String> reports = jsc.parallelize(Arrays.asList(0, 1), 2).rdd()
        .barrier()
        .mapPartitions(new GatherPids(), false, ClassTag$.MODULE$.apply(String.class));
    List<String> rows = reports.toJavaRDD().collect();

    assertEquals(2, rows.size(), rows.toString());
    Set<String> ownMessages = new HashSet<>();
    for (String row : rows) {
      String[] parts = row.split("\\|");
      ownMessages.add(parts[0]);
      // Every task received both tasks' messages, in partition order.
      assertEquals(2, parts[1].split(",").length, row);
    }
    assertEquals(2, ownMessages.size(), "both tasks ran in one JVM: " + rows);
    String gathered = rows.get(0).split("\\|")[1];
    assertEquals(gathered, rows.get(1).split("\\|")[1]);
    assertTrue(gathered.startsWith("0:") && gathered.contains(",1:"), gathered);
  }

  /** Each barrier task sends "partition:pid" to all and returns "own|everyone's". */
  private static final class GatherPids extends AbstractFunction1<Iterator<Integer>, Iterator<String>>
      implements Serializable {
    @Override
    public Iterator<String> apply(Iterator<Integer> rows) {
      BarrierTaskContext ctx = BarrierTaskContext.get();
      String own = ctx.partitionId() + ":" + ProcessHandle.current().pid();
      List<String> all = new ArrayList<>(Arrays.asList(ctx.allGather(own)));
      // Iterator.single exists in Scala 2.12 and 2.13 alike (scala.jdk.javaapi is 2.13 only): see docs/spark-3.5.md.
      return Iterator$.MODULE$.single(own + "|" + String.join(",", all));
    }
  }
}
