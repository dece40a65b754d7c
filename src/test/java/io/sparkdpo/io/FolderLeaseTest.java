package io.sparkdpo.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FolderLeaseTest {
  @TempDir
  Path dir;

  private final Storage storage = Storage.local();

  private FolderLease acquire(String runId, Duration timeout) {
    return FolderLease.acquire(storage, dir.toString(), runId, timeout, Clock.systemUTC(), Duration.ZERO);
  }

  @Test
  void aSecondLiveWriterIsRefusedNamingFolderAndHolder() {
    try (FolderLease first = acquire("train-aaaa", Duration.ofSeconds(60))) {
      FolderLease.LeaseException e = assertThrows(FolderLease.LeaseException.class,
          () -> acquire("train-bbbb", Duration.ofSeconds(60)));
      assertTrue(e.getMessage().contains(Storage.qualify(dir.toString())), e.getMessage());
      assertTrue(e.getMessage().contains("run train-aaaa"), e.getMessage());
      assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
      assertEquals("train-aaaa", first.holder().runId(), "the refused writer did not touch the lease");
    }
    assertFalse(Files.exists(dir.resolve(FolderLease.FILE)), "close removes the lease");
    acquire("train-bbbb", Duration.ofSeconds(60)).close();
  }

  @Test
  void aStaleLeaseIsTakenOver() throws Exception {
    Instant old = Instant.now().minusSeconds(600);
    Files.writeString(dir.resolve(FolderLease.FILE), "{\"run_id\":\"train-dead\",\"attempt\":2,\"host\":\"gone\","
        + "\"pid\":1,\"acquired_at\":\"" + old + "\",\"heartbeat_at\":\"" + old + "\"}");
    try (FolderLease lease = acquire("train-live", Duration.ofSeconds(60))) {
      assertTrue(Files.readString(dir.resolve(FolderLease.FILE)).contains("train-live"));
      assertEquals(0, lease.holder().attempt());
    }
  }

  /** A driver killed with -9 and started again on the same host need not wait out the timeout. */
  @Test
  void aLeaseOfAProcessOfThisHostThatIsGoneIsTakenOverAtOnce() throws Exception {
    Process gone = new ProcessBuilder("true").start();
    gone.waitFor();
    Instant now = Instant.now();
    String host = java.net.InetAddress.getLocalHost().getHostName();
    Files.writeString(dir.resolve(FolderLease.FILE), "{\"run_id\":\"train-killed\",\"attempt\":1,\"host\":\""
        + host + "\",\"pid\":" + gone.pid() + ",\"acquired_at\":\"" + now + "\",\"heartbeat_at\":\"" + now + "\"}");
    try (FolderLease lease = acquire("train-again", Duration.ofSeconds(60))) {
      assertEquals("train-again", lease.holder().runId());
    }
    Files.writeString(dir.resolve(FolderLease.FILE), "{\"run_id\":\"train-elsewhere\",\"attempt\":1,\"host\":\""
        + "another-host\",\"pid\":" + gone.pid() + ",\"acquired_at\":\"" + now + "\",\"heartbeat_at\":\"" + now
        + "\"}");
    assertThrows(FolderLease.LeaseException.class, () -> acquire("train-again", Duration.ofSeconds(60)),
        "a pid on another host says nothing about this one");
  }

  @Test
  void theHeartbeatKeepsALeaseLiveLongerThanItsTimeout() throws Exception {
    try (FolderLease first = acquire("train-aaaa", Duration.ofMillis(400))) {
      Thread.sleep(1200);
      assertThrows(FolderLease.LeaseException.class, () -> acquire("train-bbbb", Duration.ofMillis(400)));
      first.requireHeld("commit");
    }
  }

  @Test
  void aLeaseTakenOverIsLostForItsOldHolder() throws Exception {
    try (FolderLease first = acquire("train-aaaa", Duration.ofMillis(400))) {
      Instant now = Instant.now();
      Files.writeString(dir.resolve(FolderLease.FILE), "{\"run_id\":\"train-bbbb\",\"attempt\":1,\"host\":\"h\","
          + "\"pid\":2,\"acquired_at\":\"" + now + "\",\"heartbeat_at\":\"" + now + "\"}");
      Thread.sleep(400);
      FolderLease.LeaseException e = assertThrows(FolderLease.LeaseException.class, () -> first.requireHeld("export"));
      assertTrue(e.getMessage().contains("train-bbbb"), e.getMessage());
    }
    assertTrue(Files.readString(dir.resolve(FolderLease.FILE)).contains("train-bbbb"),
        "a lost lease is not deleted on close: it is not ours");
  }

  @Test
  void aStragglerOfAnEarlierAttemptIsFencedOut() {
    try (FolderLease lease = acquire("train-aaaa", Duration.ofSeconds(60))) {
      lease.beginAttempt(1);
      FolderLease.requireHolder(storage, dir.toString(), "train-aaaa", 1, "commit checkpoint step 5");
      lease.beginAttempt(2);
      FolderLease.LeaseException e = assertThrows(FolderLease.LeaseException.class,
          () -> FolderLease.requireHolder(storage, dir.toString(), "train-aaaa", 1, "commit checkpoint step 5"));
      assertTrue(e.getMessage().contains("attempt 1 of run train-aaaa may not commit checkpoint step 5"),
          e.getMessage());
      assertTrue(e.getMessage().contains("straggler"), e.getMessage());
      FolderLease.requireHolder(storage, dir.toString(), "train-aaaa", 2, "commit checkpoint step 5");
      assertThrows(FolderLease.LeaseException.class,
          () -> FolderLease.requireHolder(storage, dir.toString(), "train-other", 2, "delete"));
    }
    assertThrows(FolderLease.LeaseException.class,
        () -> FolderLease.requireHolder(storage, dir.toString(), "train-aaaa", 2, "commit"));
  }

  /** Eight writers start at once: exactly one gets the folder (create-if-absent, not check-then-write). */
  @Test
  void ofWritersRacingForAFreeFolderExactlyOneWins() throws Exception {
    int n = 8;
    ExecutorService pool = Executors.newFixedThreadPool(n);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<FolderLease>> tries = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String run = "train-" + i;
      tries.add(pool.submit(() -> {
        go.await();
        return acquire(run, Duration.ofSeconds(60));
      }));
    }
    go.countDown();
    List<FolderLease> won = new ArrayList<>();
    for (Future<FolderLease> f : tries) {
      try {
        won.add(f.get());
      } catch (java.util.concurrent.ExecutionException e) {
        assertTrue(e.getCause() instanceof FolderLease.LeaseException, String.valueOf(e.getCause()));
      }
    }
    pool.shutdown();
    won.forEach(FolderLease::close); // only after all have tried: a released folder is free again
    assertEquals(1, won.size());
  }
}
