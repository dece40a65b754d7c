package io.sparkdpo.inference;

import ai.djl.Device;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.AdapterFolder;
import io.sparkdpo.model.CausalLM;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The models of this JVM (a Spark executor, or the driver in local mode), loaded lazily on first use, keyed by
 * fingerprint and device, and shared by every task the JVM runs: a stage over many partitions loads its model once
 * per executor, not once per task. Tasks hold a {@link Lease} while they use a model; concurrent tasks asking for the
 * same model wait for one load. Beyond {@value #DEFAULT_CAPACITY} models (system property
 * {@code sparkdpo.executor.models}) the least recently used idle one is closed, so a long-lived executor that
 * serves several jobs does not accumulate models.
 */
public final class ExecutorModels {
  private static final Logger LOG = LoggerFactory.getLogger(ExecutorModels.class);
  /** Two: evaluation holds the policy and pi_SFT at once. */
  static final int DEFAULT_CAPACITY = 2;
  private static final Map<String, Entry> CACHE = new LinkedHashMap<>(16, 0.75f, true); // access order: LRU first
  private static final AtomicLong LOADS = new AtomicLong();

  private ExecutorModels() {}

  /** A task's use of a cached model; closing it lets the cache evict the model once nobody uses it. */
  public static final class Lease implements AutoCloseable {
    private final Entry entry;
    private final boolean loadedNow;
    private boolean closed;

    private Lease(Entry entry, boolean loadedNow) {
      this.entry = entry;
      this.loadedNow = loadedNow;
    }

    public CausalLM model() {
      return entry.model;
    }

    /** True when this call loaded the model (the JVM had no copy). */
    public boolean loadedNow() {
      return loadedNow;
    }

    @Override
    public void close() {
      synchronized (ExecutorModels.class) {
        if (!closed) {
          closed = true;
          entry.leases--;
          evictIdle();
        }
      }
    }
  }

  private static final class Entry {
    final String key;
    int leases;
    CausalLM model; // guarded by this entry's monitor while loading

    Entry(String key) {
      this.key = key;
    }
  }

  /**
   * The model of {@code spec} on {@code device}, loading it if this JVM has none; {@code conf} reaches the
   * model's file system (hdfs:, s3a:). The loaded model's fingerprint must equal the one the driver resolved.
   */
  public static Lease acquire(ModelSpec spec, Device device, Configuration conf) {
    String key = key(spec, device);
    Entry entry;
    synchronized (ExecutorModels.class) {
      entry = CACHE.computeIfAbsent(key, Entry::new);
      entry.leases++;
    }
    boolean loaded = false;
    try {
      synchronized (entry) {
        if (entry.model == null) {
          entry.model = load(spec, device, conf);
          loaded = true;
        }
      }
      return new Lease(entry, loaded);
    } catch (RuntimeException | Error e) {
      synchronized (ExecutorModels.class) {
        entry.leases--;
        if (entry.model == null && entry.leases == 0) {
          CACHE.remove(key, entry);
        }
      }
      throw e;
    }
  }

  private static CausalLM load(ModelSpec spec, Device device, Configuration conf) {
    long start = System.nanoTime();
    Storage storage = new Storage(conf);
    CausalLM model = CausalLM.load(spec.path(), storage, device, spec.builtinSeed(), spec.loadDtype());
    String actual = model.fingerprint();
    if (spec.adapter() != null) {
      try {
        model.loadAdapter(spec.adapter(), storage);
      } catch (RuntimeException | Error e) {
        model.close();
        throw e;
      }
      actual = AdapterFolder.withBase(actual, model.adapterFingerprint());
    }
    if (!actual.equals(spec.fingerprint())) {
      model.close();
      String what = spec.path() + (spec.adapter() == null ? "" : " + adapter " + spec.adapter());
      throw new IllegalStateException("model " + what + " has fingerprint " + actual.substring(0, 16)
          + " on this executor, but the driver planned the job with " + spec.shortFingerprint()
          + ": the model changed while the job ran; run it again");
    }
    LOADS.incrementAndGet();
    LOG.info("loaded model {} (fingerprint {}, {}) on {} in {} ms; cached for every task of this JVM", spec.path(),
        spec.shortFingerprint(), model.dtype(), device, (System.nanoTime() - start) / 1_000_000);
    return model;
  }

  /** Closes least recently used models nobody holds while the cache is over capacity. */
  private static void evictIdle() {
    int capacity = Integer.getInteger("sparkdpo.executor.models", DEFAULT_CAPACITY);
    Iterator<Entry> it = CACHE.values().iterator();
    while (CACHE.size() > capacity && it.hasNext()) {
      Entry e = it.next();
      if (e.leases == 0 && e.model != null) {
        it.remove();
        e.model.close();
        LOG.info("closed cached model {} (cache over {} models)", e.key, capacity);
      }
    }
  }

  /** One model per weights, dtype and device: the same folder in bf16 and in float32 are two models. */
  private static String key(ModelSpec spec, Device device) {
    return spec.fingerprint() + "/" + spec.dtype() + "@" + device;
  }

  /** Models this JVM has loaded since it started (tests count loads per executor with it). */
  public static long loads() {
    return LOADS.get();
  }

  /** Whether this JVM holds the model of {@code spec} on {@code device}. */
  static synchronized boolean isCached(ModelSpec spec, Device device) {
    Entry e = CACHE.get(key(spec, device));
    return e != null && e.model != null;
  }
}
