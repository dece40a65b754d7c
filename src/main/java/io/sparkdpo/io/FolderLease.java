package io.sparkdpo.io;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One writer per output folder, through {@link Storage} alone (no file locks, so local disk, HDFS and S3 alike):
 * {@code FOLDER/_lease.json} names the run that writes there.
 * <ol>
 *   <li>Acquire: a lease of another run whose heartbeat is younger than the timeout refuses the newcomer
 *   ({@link LeaseException} naming the folder and the holder: run, attempt, host, pid, heartbeat age). An older
 *   one is stale (its writer died): taken over with a warning; so is one held by a process of this host that no
 *   longer exists.</li>
 *   <li>The file is created only if absent (atomic on local disk and HDFS): losing that race is a refusal too.
 *   Where create is a check then a put (S3), the newcomer waits {@code settle} and reads the file back; another
 *   run's id there means it lost.</li>
 *   <li>Heartbeat: every quarter of the timeout the holder reads the file and, if it is still its own, rewrites
 *   it with the time. If another run holds it (this one was stale, e.g. a driver frozen past the timeout), the
 *   lease is lost and {@link #requireHeld} fails from then on.</li>
 *   <li>Attempts: the driver records each stage attempt in the lease ({@link #beginAttempt}); a task of attempt
 *   {@code a} calls {@link #requireHolder} right before it commits or deletes anything, so a straggler of an
 *   earlier attempt (or of a run that lost the folder) is fenced out. A check then an act, not a transaction:
 *   the window left is the time between the read and the write, milliseconds against an attempt's seconds.</li>
 *   <li>Close: the heartbeat stops and the file is deleted if it is still this run's.</li>
 * </ol>
 * Ages are measured on the reader's clock against the writer's: the timeout must exceed the clock skew between
 * hosts as well as the longest pause of a live driver.
 */
public final class FolderLease implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(FolderLease.class);
  public static final String FILE = "_lease.json";
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);
  /** How long a writer on a store without atomic create waits before reading its lease back. */
  static final Duration SETTLE = Duration.ofSeconds(2);
  private static final int READ_TRIES = 5;

  /** The content of the lease file. */
  public record Holder(@JsonProperty("run_id") String runId, @JsonProperty("attempt") int attempt,
                       @JsonProperty("host") String host, @JsonProperty("pid") long pid,
                       @JsonProperty("acquired_at") String acquiredAt, @JsonProperty("heartbeat_at") String heartbeatAt) {

    Instant heartbeat() {
      return Instant.parse(heartbeatAt);
    }

    String describe(Clock clock) {
      long age = Duration.between(heartbeat(), clock.instant()).toSeconds();
      return "run " + runId + " (attempt " + attempt + ", host " + host + ", pid " + pid + ", last heartbeat "
          + heartbeatAt + ", " + age + " s ago)";
    }
  }

  /** A folder held by another live writer, a lease lost, or a fenced-out attempt. Never worth a retry. */
  public static final class LeaseException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public LeaseException(String message) {
      super(message);
    }
  }

  private final Storage storage;
  private final String folder;
  private final String path;
  private final Duration timeout;
  private final Clock clock;
  private final ScheduledExecutorService heartbeat;
  private volatile Holder holder;
  private volatile String lost;

  private FolderLease(Storage storage, String folder, Duration timeout, Clock clock, Holder holder) {
    this.storage = storage;
    this.folder = folder;
    this.path = Storage.join(folder, FILE);
    this.timeout = timeout;
    this.clock = clock;
    this.holder = holder;
    this.heartbeat = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "lease-heartbeat " + folder);
      t.setDaemon(true);
      return t;
    });
    long every = Math.max(timeout.toMillis() / 4, 50);
    heartbeat.scheduleWithFixedDelay(this::beat, every, every, TimeUnit.MILLISECONDS);
  }

  /** Takes the lease of {@code folder} for {@code runId} (attempt 0 until {@link #beginAttempt}); see the class. */
  public static FolderLease acquire(Storage storage, String folder, String runId, Duration timeout) {
    return acquire(storage, folder, runId, timeout, Clock.systemUTC(), SETTLE);
  }

  static FolderLease acquire(Storage storage, String folder, String runId, Duration timeout, Clock clock,
      Duration settle) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("lease timeout must be positive, got " + timeout);
    }
    String dir = Storage.qualify(folder);
    String path = Storage.join(dir, FILE);
    Optional<Holder> existing = read(storage, path, clock);
    if (existing.isPresent()) {
      Holder h = existing.get();
      if (!h.runId().equals(runId) && !stale(h, timeout, clock)) {
        throw new LeaseException(dir + " is being written by " + h.describe(clock) + ": one writer per output "
            + "folder. Wait for it to finish, stop it, or use another folder; a lease whose heartbeat is older than "
            + timeout.toSeconds() + " s is taken over.");
      }
      if (!h.runId().equals(runId)) {
        LOG.warn("{}: taking over the stale lease of {} (no heartbeat for more than {} s: its writer is gone)", dir,
            h.describe(clock), timeout.toSeconds());
      }
      storage.delete(path);
    }
    String now = clock.instant().toString();
    Holder mine = new Holder(runId, 0, hostName(), ProcessHandle.current().pid(), now, now);
    if (!storage.writeNew(path, bytes(mine))) {
      throw new LeaseException(dir + " was taken by " + read(storage, path, clock).map(h -> h.describe(clock))
          .orElse("another writer") + " while this run (" + runId + ") was acquiring it: one writer per output "
          + "folder");
    }
    if (!storage.atomicCreate(path)) {
      sleep(settle);
      Optional<Holder> back = read(storage, path, clock);
      if (back.isEmpty() || !back.get().runId().equals(runId)) {
        throw new LeaseException(dir + " was taken by " + back.map(h -> h.describe(clock)).orElse("another writer")
            + " while this run (" + runId + ") was acquiring it: one writer per output folder");
      }
    }
    LOG.info("{}: lease taken by run {} ({} pid {})", dir, runId, mine.host(), mine.pid());
    return new FolderLease(storage, dir, timeout, clock, mine);
  }

  public String folder() {
    return folder;
  }

  public Holder holder() {
    return holder;
  }

  /** Records stage attempt {@code attempt}: tasks of earlier attempts can no longer commit ({@link #requireHolder}). */
  public synchronized void beginAttempt(int attempt) {
    requireHeld("start attempt " + attempt);
    holder = new Holder(holder.runId(), attempt, holder.host(), holder.pid(), holder.acquiredAt(),
        clock.instant().toString());
    storage.writeBytes(path, bytes(holder));
  }

  /** Fails unless the file still names this run: for the driver's own commits (e.g. the final model). */
  public void requireHeld(String action) {
    if (lost != null) {
      throw new LeaseException("cannot " + action + " in " + folder + ": " + lost);
    }
    requireHolder(storage, folder, holder.runId(), holder.attempt(), action);
  }

  /**
   * Fails unless {@code folder}'s lease names {@code runId} at {@code attempt}: a task calls this right before it
   * commits or deletes, so only the current attempt of the run that holds the folder writes there.
   */
  public static void requireHolder(Storage storage, String folder, String runId, int attempt, String action) {
    String dir = Storage.qualify(folder);
    Optional<Holder> h = read(storage, Storage.join(dir, FILE), Clock.systemUTC());
    if (h.isEmpty()) {
      throw new LeaseException("attempt " + attempt + " of run " + runId + " may not " + action + " in " + dir
          + ": the folder's lease is gone (its run ended or gave it up)");
    }
    if (!h.get().runId().equals(runId) || h.get().attempt() != attempt) {
      throw new LeaseException("attempt " + attempt + " of run " + runId + " may not " + action + " in " + dir
          + ": the folder is held by " + h.get().describe(Clock.systemUTC())
          + (h.get().runId().equals(runId) ? " (a later attempt: this task is a straggler)" : ""));
    }
  }

  @Override
  public synchronized void close() {
    heartbeat.shutdownNow();
    try {
      heartbeat.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (lost == null) {
      Optional<Holder> h = read(storage, path, clock);
      if (h.isPresent() && h.get().runId().equals(holder.runId())) {
        storage.delete(path);
      }
    }
  }

  private synchronized void beat() {
    if (lost != null) {
      return;
    }
    try {
      Optional<Holder> h = read(storage, path, clock);
      if (h.isEmpty() || !h.get().runId().equals(holder.runId())) {
        lost = "the lease was taken over by " + h.map(x -> x.describe(clock)).orElse("nobody (the file is gone)")
            + " after this run's heartbeat stalled for more than " + timeout.toSeconds() + " s";
        LOG.error("{}: {}", folder, lost);
        return;
      }
      holder = new Holder(holder.runId(), holder.attempt(), holder.host(), holder.pid(), holder.acquiredAt(),
          clock.instant().toString());
      storage.writeBytes(path, bytes(holder));
    } catch (RuntimeException e) {
      LOG.warn("{}: lease heartbeat failed (will retry): {}", folder, e.getMessage());
    }
  }

  /**
   * No heartbeat within the timeout, or a holder on this very host whose process is gone (a driver killed and
   * started again need not wait out the timeout). A live pid is trusted even if reused: the timeout still ends it.
   */
  private static boolean stale(Holder h, Duration timeout, Clock clock) {
    boolean deadHere = h.host().equals(hostName()) && h.pid() > 0 && ProcessHandle.of(h.pid()).isEmpty();
    return deadHere || Duration.between(h.heartbeat(), clock.instant()).compareTo(timeout) > 0;
  }

  /**
   * The lease, if any. A file that does not parse is being rewritten (read again) or was torn by a dying writer:
   * then its modification time stands for the heartbeat.
   */
  private static Optional<Holder> read(Storage storage, String path, Clock clock) {
    for (int i = 0; ; i++) {
      byte[] bytes;
      try {
        bytes = storage.readBytes(path);
      } catch (UncheckedIOException e) {
        if (e.getCause() instanceof FileNotFoundException || !storage.exists(path)) {
          return Optional.empty();
        }
        throw e;
      }
      try {
        Holder h = Json.MAPPER.readValue(bytes, Holder.class);
        if (h.runId() != null && h.heartbeatAt() != null) {
          h.heartbeat();
          return Optional.of(h);
        }
      } catch (IOException | RuntimeException e) {
        // fall through: unreadable
      }
      if (i + 1 >= READ_TRIES) {
        try {
          Instant modified = Instant.ofEpochMilli(storage.status(path).getModificationTime());
          return Optional.of(new Holder("(unreadable lease)", -1, "?", -1, modified.toString(), modified.toString()));
        } catch (FileNotFoundException e) {
          return Optional.empty();
        }
      }
      sleep(Duration.ofMillis(100));
    }
  }

  private static byte[] bytes(Holder h) {
    try {
      return Json.MAPPER.writeValueAsBytes(h);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "unknown-host";
    }
  }

  private static void sleep(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new LeaseException("interrupted while acquiring a folder lease");
    }
  }
}
