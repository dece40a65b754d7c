package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

class ExecutorModelsTest {
  private static final Configuration CONF = new Configuration();

  private static ModelSpec spec(long seed) {
    return ModelSpec.resolve(CausalLM.BUILTIN_TINY, seed, "cpu", Storage.local());
  }

  @Test
  void concurrentTasksAskingForOneModelShareASingleLoad() throws Exception {
    ModelSpec spec = spec(ReferenceFixtures.freshSeed());
    long before = ExecutorModels.loads();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    CountDownLatch start = new CountDownLatch(1);
    List<Future<ExecutorModels.Lease>> leases = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      leases.add(pool.submit(() -> {
        start.await();
        return ExecutorModels.acquire(spec, Device.cpu(), CONF);
      }));
    }
    start.countDown();
    CausalLM first = leases.get(0).get().model();
    int loadedNow = 0;
    for (Future<ExecutorModels.Lease> f : leases) {
      assertSame(first, f.get().model());
      loadedNow += f.get().loadedNow() ? 1 : 0;
      f.get().close();
    }
    pool.shutdown();
    assertEquals(1, loadedNow);
    assertEquals(before + 1, ExecutorModels.loads());
    assertEquals(spec.fingerprint(), first.fingerprint());
  }

  @Test
  void beyondTwoModelsTheLeastRecentlyUsedIdleOneIsClosedButNeverOneInUse() {
    ModelSpec a = spec(ReferenceFixtures.freshSeed());
    ModelSpec b = spec(ReferenceFixtures.freshSeed());
    ModelSpec c = spec(ReferenceFixtures.freshSeed());
    ExecutorModels.Lease held = ExecutorModels.acquire(a, Device.cpu(), CONF);
    ExecutorModels.acquire(b, Device.cpu(), CONF).close();
    ExecutorModels.acquire(c, Device.cpu(), CONF).close();
    // a is the oldest but in use; b is the least recently used idle one.
    assertTrue(ExecutorModels.isCached(a, Device.cpu()));
    assertFalse(ExecutorModels.isCached(b, Device.cpu()));
    assertTrue(ExecutorModels.isCached(c, Device.cpu()));
    held.close();
    held.close(); // a second close changes nothing
    ExecutorModels.Lease again = ExecutorModels.acquire(c, Device.cpu(), CONF);
    assertFalse(again.loadedNow());
    again.close();
  }

  @Test
  void aModelWhoseFingerprintDiffersFromTheDriversIsRefused() {
    ModelSpec real = spec(ReferenceFixtures.freshSeed());
    ModelSpec stale = new ModelSpec(real.path(), real.builtinSeed(), "cpu", "0123456789abcdef" + "0".repeat(48));
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> ExecutorModels.acquire(stale, Device.cpu(), CONF));
    assertTrue(e.getMessage().contains("the driver planned the job with 0123456789abcdef"), e.getMessage());
    assertFalse(ExecutorModels.isCached(stale, Device.cpu()));
  }
}
