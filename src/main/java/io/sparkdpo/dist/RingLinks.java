package io.sparkdpo.dist;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.CancelledKeyException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A rank's two ring connections: it writes only to its right neighbour and reads only from its
 * left one, both non-blocking on one selector so sending and receiving overlap in one thread.
 *
 * <p>Every collective starts with a header (collective, sequence number, size) that the receiver
 * checks against its own call. Any failure closes both connections at once: the neighbours then see
 * end-of-stream and fail in turn, so a broken ring fails everywhere in milliseconds instead of each
 * rank waiting out its timeout.
 *
 * <p>{@link #onRankZero} is the one exchange that is not held to the I/O timeout: rank 0 works alone
 * (a checkpoint) while the others wait. It sends a keepalive frame (a header) every
 * {@link RingOptions#keepaliveInterval()} from a second thread, each rank forwards every frame to its
 * right (the last rank only DONE), and a DONE frame ends the wait once it has come round to rank 0. A waiting rank fails when
 * no frame arrives for the I/O timeout (rank 0 frozen or its host gone: a dead process closes its
 * connections and is noticed at once) or when rank 0 is not done within the rank-0 timeout.
 */
final class RingLinks implements AutoCloseable {

  private static final int MAGIC = 0x5344504F; // "SDPO"
  private static final int HEADER_BYTES = 24;
  /** Frame kinds of {@link Collective#ON_RANK_ZERO}, in the header's size field. */
  private static final long KEEPALIVE = 0;
  private static final long DONE = 1;

  private final int rank;
  private final int worldSize;
  private final InetSocketAddress leftAddress;
  private final InetSocketAddress rightAddress;
  private final SocketChannel left;
  private final SocketChannel right;
  private final Selector selector;
  private final SelectionKey leftKey;
  private final SelectionKey rightKey;
  private final long ioTimeoutNanos;
  private final long rankZeroTimeoutNanos;
  private final long keepaliveNanos;
  private final ByteBuffer headerOut = ByteBuffer.allocateDirect(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private final ByteBuffer headerIn = ByteBuffer.allocateDirect(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private final ByteBuffer probe = ByteBuffer.allocate(64);

  private long sequence;
  private boolean rightClosed;
  private boolean closed;
  private RuntimeException failure;

  /**
   * @param leftAddress,rightAddress the neighbours' published addresses, for messages
   * @param left,right connected channels; this object owns them from now on
   */
  RingLinks(int rank, int worldSize, SocketChannel left, InetSocketAddress leftAddress,
      SocketChannel right, InetSocketAddress rightAddress, RingOptions options) throws IOException {
    this.rank = rank;
    this.worldSize = worldSize;
    this.left = left;
    this.right = right;
    this.leftAddress = leftAddress;
    this.rightAddress = rightAddress;
    this.ioTimeoutNanos = options.ioTimeout().toNanos();
    this.rankZeroTimeoutNanos = options.rankZeroTimeout().toNanos();
    this.keepaliveNanos = options.keepaliveInterval().toNanos();
    left.configureBlocking(false);
    right.configureBlocking(false);
    this.selector = Selector.open();
    this.leftKey = left.register(selector, 0);
    this.rightKey = right.register(selector, 0);
  }

  int leftRank() {
    return Math.floorMod(rank - 1, worldSize);
  }

  int rightRank() {
    return Math.floorMod(rank + 1, worldSize);
  }

  /**
   * Runs one collective to completion. {@code size} is whatever every rank must agree on (an
   * element count, or 0 where ranks cannot know it).
   *
   * @throws CollectiveException naming the peer when a connection fails, closes or stalls
   */
  void run(Collective collective, long size, RingTransfer transfer) {
    long seq = begin(collective);
    try {
      pump(collective, seq, size, transfer);
    } catch (RuntimeException e) {
      failure = e;
      close();
      throw e;
    }
  }

  /** See {@link AllReduce#onRankZero}; the protocol is in the class comment. */
  void onRankZero(AllReduce.Work work) throws Exception {
    long seq = begin(Collective.ON_RANK_ZERO);
    Progress progress = new Progress(Collective.ON_RANK_ZERO, seq);
    try {
      if (rank == 0) {
        workAlone(work, seq, progress);
      } else {
        relayUntilDone(seq, progress);
      }
    } catch (RuntimeException e) {
      failure = e;
      close();
      throw e;
    }
  }

  private void workAlone(AllReduce.Work work, long seq, Progress progress) throws Exception {
    Keepalive keepalive = new Keepalive(frame(seq, KEEPALIVE), progress);
    try {
      work.run();
    } catch (Exception | Error e) {
      keepalive.stop();
      // Closing makes the waiting ranks fail now rather than at a timeout.
      failure = progress.fail(-1, "rank 0's work failed: " + e, e);
      close();
      throw e;
    }
    ByteBuffer unfinished = keepalive.stop();
    long deadline = System.nanoTime() + ioTimeoutNanos;
    writeFully(unfinished, deadline, progress);
    writeFully(frame(seq, DONE), deadline, progress);
    // DONE has come round once every rank has had it: then rank 0 goes on as well.
    if (readFrame(seq, Long.MAX_VALUE, progress) != DONE) {
      throw progress.fail(leftRank(), "protocol error: rank " + leftRank() + " at " + leftAddress
          + " passed a keepalive back to rank 0", null);
    }
  }

  private void relayUntilDone(long seq, Progress progress) {
    long limit = System.nanoTime() + rankZeroTimeoutNanos;
    for (;;) {
      long kind = readFrame(seq, limit, progress);
      // Rank 0 needs no keepalives: the last rank passes it DONE only, so nothing piles up in its socket.
      if (kind == DONE || rightRank() != 0) {
        writeFully(headerIn, System.nanoTime() + ioTimeoutNanos, progress);
      }
      if (kind == DONE) {
        return;
      }
    }
  }

  /**
   * Reads one frame of this {@link Collective#ON_RANK_ZERO} into {@code headerIn} (left ready to
   * forward) and returns its kind. Fails when none arrives within the I/O timeout, or by {@code limit}.
   */
  private long readFrame(long seq, long limit, Progress progress) {
    long deadline = Math.min(limit, System.nanoTime() + ioTimeoutNanos);
    headerIn.clear();
    while (headerIn.hasRemaining()) {
      if (read(headerIn, progress) == 0 && !await(false, true, deadline, progress)) {
        throw frameTimeout(deadline == limit, progress);
      }
    }
    headerIn.flip();
    int magic = headerIn.getInt();
    Collective theirs = Collective.fromWire(headerIn.getInt());
    long theirSeq = headerIn.getLong();
    long kind = headerIn.getLong();
    headerIn.rewind();
    String peer = "rank " + leftRank() + " at " + leftAddress;
    if (magic != MAGIC || theirs == null || (theirs == Collective.ON_RANK_ZERO && kind != KEEPALIVE && kind != DONE)) {
      throw progress.fail(leftRank(), "protocol error: " + peer + " sent an unreadable frame", null);
    }
    if (theirs != Collective.ON_RANK_ZERO || theirSeq != seq) {
      throw progress.fail(leftRank(), "ranks disagree: " + peer + " is in " + theirs.displayName() + " #"
          + theirSeq + ", this rank in " + Collective.ON_RANK_ZERO.displayName() + " #" + seq
          + " (every rank must call the same collectives in the same order)", null);
    }
    return kind;
  }

  private CollectiveException frameTimeout(boolean atLimit, Progress progress) {
    if (rank == 0) {
      return progress.fail(leftRank(), "the end of rank 0's work did not come round the ring from rank "
          + leftRank() + " at " + leftAddress + " within " + TimeUnit.NANOSECONDS.toMillis(ioTimeoutNanos)
          + " ms (a rank stopped responding)", null);
    }
    if (atLimit) {
      return progress.fail(0, "rank 0 kept sending keepalives but did not finish its work alone (verifying or "
          + "writing a checkpoint) within " + TimeUnit.NANOSECONDS.toSeconds(rankZeroTimeoutNanos)
          + " s, the rank-0 timeout (save_timeout_s)", null);
    }
    return progress.fail(leftRank(), "no keepalive from rank " + leftRank() + " at " + leftAddress + " for "
        + TimeUnit.NANOSECONDS.toMillis(ioTimeoutNanos) + " ms while rank 0 works alone (rank 0, or a rank"
        + " between, stopped responding)", null);
  }

  private void writeFully(ByteBuffer out, long deadline, Progress progress) {
    while (out.hasRemaining()) {
      if (write(out, progress) == 0 && !await(true, false, deadline, progress)) {
        throw timeout(true, false, progress);
      }
    }
  }

  private static ByteBuffer frame(long seq, long kind) {
    ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(MAGIC).putInt(Collective.ON_RANK_ZERO.ordinal()).putLong(seq).putLong(kind).flip();
    return b;
  }

  /** Checks that the group is usable and numbers the next collective. */
  private long begin(Collective collective) {
    if (closed && failure == null) {
      throw new IllegalStateException("the all-reduce group is closed");
    }
    long seq = ++sequence;
    if (failure != null) {
      throw new CollectiveException(where(collective, seq)
          + "the ring is broken by an earlier failure: " + failure.getMessage(), -1, failure);
    }
    return seq;
  }

  private void pump(Collective collective, long seq, long size, RingTransfer transfer) {
    headerOut.clear();
    headerOut.putInt(MAGIC).putInt(collective.ordinal()).putLong(seq).putLong(size).flip();
    headerIn.clear();
    ByteBuffer out = headerOut;
    ByteBuffer in = headerIn;
    boolean headerPending = true;
    Progress progress = new Progress(collective, seq);
    long lastProgress = System.nanoTime();
    for (;;) {
      if (out != null && !out.hasRemaining()) {
        out = null;
      }
      if (out == null) {
        out = transfer.nextToSend();
      }
      if (in == null && !headerPending) {
        in = transfer.nextToReceive();
      }
      if (out == null && in == null) {
        if (!transfer.sendComplete()) {
          throw new IllegalStateException(where(collective, seq)
              + "nothing left to receive but the send side waits: a bug in the transfer plan");
        }
        return;
      }
      boolean moved = false;
      if (out != null && out.hasRemaining()) {
        int n = write(out, progress);
        moved = n > 0;
      }
      if (in != null) {
        int n = read(in, progress);
        moved |= n > 0;
        if (!in.hasRemaining()) {
          if (headerPending) {
            checkHeader(collective, seq, size);
            headerPending = false;
          } else {
            transfer.received();
          }
          in = null;
          moved = true;
        }
      }
      if (moved) {
        lastProgress = System.nanoTime();
      } else if (!await(out != null, in != null, lastProgress + ioTimeoutNanos, progress)) {
        throw timeout(out != null, in != null, progress);
      }
    }
  }

  private int write(ByteBuffer out, Progress progress) {
    if (rightClosed) {
      throw rightClosedError(progress);
    }
    try {
      int n = right.write(out);
      progress.sent += n;
      return n;
    } catch (IOException e) {
      throw progress.fail(rightRank(), "sending to rank " + rightRank() + " at "
          + rightAddress + " failed (" + e.getMessage() + "): that rank died or closed its connection",
          e);
    }
  }

  private int read(ByteBuffer in, Progress progress) {
    int n;
    try {
      n = left.read(in);
    } catch (IOException e) {
      throw progress.fail(leftRank(), "receiving from rank " + leftRank() + " at "
          + leftAddress + " failed (" + e.getMessage() + "): that rank died or closed its connection",
          e);
    }
    if (n < 0) {
      throw progress.fail(leftRank(), "rank " + leftRank() + " at " + leftAddress
          + " closed its connection (it failed, was stopped, or left the group)", null);
    }
    progress.received += n;
    return n;
  }

  /**
   * Waits until a channel is ready, watching the right link for an early close as well; false once
   * {@code deadline} (a {@link System#nanoTime()}) has passed.
   */
  private boolean await(boolean wantWrite, boolean wantRead, long deadline, Progress progress) {
    long remaining = deadline - System.nanoTime();
    if (remaining <= 0) {
      return false;
    }
    if (Thread.currentThread().isInterrupted()) {
      throw progress.fail(-1, "interrupted", null);
    }
    try {
      leftKey.interestOps(wantRead ? SelectionKey.OP_READ : 0);
      rightKey.interestOps((wantWrite ? SelectionKey.OP_WRITE : 0)
          | (rightClosed ? 0 : SelectionKey.OP_READ));
      selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(remaining)));
      if (selector.selectedKeys().contains(rightKey) && rightKey.isReadable()) {
        probeRight(wantWrite, progress);
      }
      selector.selectedKeys().clear();
    } catch (ClosedSelectorException | CancelledKeyException e) {
      throw progress.fail(-1, "the group was closed during the collective", e);
    } catch (IOException e) {
      throw progress.fail(-1, "selector failed: " + e.getMessage(), e);
    }
    return true;
  }

  /**
   * The right link carries nothing towards this rank, so readable means closed or reset. That is
   * an error only while there is still something to send; a neighbour that finished and left is
   * reported by the next write.
   */
  private void probeRight(boolean wantWrite, Progress progress) {
    probe.clear();
    int n;
    try {
      n = right.read(probe);
    } catch (IOException e) {
      n = -1;
    }
    if (n > 0) {
      throw progress.fail(rightRank(), "protocol error: rank " + rightRank()
          + " at " + rightAddress + " sent data on the link that only carries data to it", null);
    }
    if (n < 0) {
      rightClosed = true;
      if (wantWrite) {
        throw rightClosedError(progress);
      }
    }
  }

  private CollectiveException rightClosedError(Progress progress) {
    return progress.fail(rightRank(), "rank " + rightRank() + " at " + rightAddress
        + " closed its connection (it failed, was stopped, or left the group)", null);
  }

  private CollectiveException timeout(boolean wantWrite, boolean wantRead, Progress progress) {
    long ms = TimeUnit.NANOSECONDS.toMillis(ioTimeoutNanos);
    if (wantRead && !wantWrite) {
      return progress.fail(leftRank(), "no data from rank " + leftRank() + " at "
          + leftAddress + " for " + ms + " ms (it stopped responding, or waits on another rank"
          + " that did)", null);
    }
    if (wantWrite && !wantRead) {
      return progress.fail(rightRank(), "rank " + rightRank() + " at " + rightAddress
          + " accepted no data for " + ms + " ms (it stopped responding)", null);
    }
    return progress.fail(leftRank(), "no data moved from rank " + leftRank() + " at "
        + leftAddress + " nor to rank " + rightRank() + " at " + rightAddress + " for " + ms
        + " ms (a rank stopped responding)", null);
  }

  private void checkHeader(Collective collective, long seq, long size) {
    headerIn.flip();
    int magic = headerIn.getInt();
    int code = headerIn.getInt();
    long theirSeq = headerIn.getLong();
    long theirSize = headerIn.getLong();
    Collective theirs = Collective.fromWire(code);
    String peer = "rank " + leftRank() + " at " + leftAddress;
    if (magic != MAGIC || theirs == null) {
      throw new CollectiveException(where(collective, seq) + "protocol error: " + peer
          + " sent an unreadable collective header", leftRank(), null);
    }
    if (theirs != collective || theirSeq != seq || theirSize != size) {
      throw new CollectiveException(where(collective, seq) + "ranks disagree: " + peer + " is in "
          + theirs.displayName() + " #" + theirSeq + " of size " + theirSize + ", this rank in "
          + collective.displayName() + " #" + seq + " of size " + size
          + " (every rank must call the same collectives in the same order with the same lengths)",
          leftRank(), null);
    }
  }

  private String where(Collective collective, long seq) {
    return "rank " + rank + " of " + worldSize + ", " + collective.displayName() + " #" + seq + ": ";
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    closeQuietly(selector);
    closeQuietly(left);
    closeQuietly(right);
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception ignored) {
      // Closing is best effort: the peer learns of it either way.
    }
  }

  /**
   * Rank 0's keepalives while it works alone: a frame every keepalive interval, written from its own
   * thread (the rank's thread is busy with the work and does not touch the links meanwhile).
   */
  private final class Keepalive {
    private final ByteBuffer frame;
    private final Progress progress;
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final Thread thread;
    private volatile CollectiveException error;

    Keepalive(ByteBuffer frame, Progress progress) {
      this.frame = frame;
      this.progress = progress;
      this.thread = new Thread(this::beat, "ring-keepalive-rank-" + rank);
      thread.setDaemon(true);
      thread.start();
    }

    private void beat() {
      try {
        // Never interrupted: an interrupt during a channel write would close the channel.
        while (!stopped.await(keepaliveNanos, TimeUnit.NANOSECONDS)) {
          if (!frame.hasRemaining()) {
            frame.rewind();
          }
          right.write(frame); // non-blocking; a partial frame is finished on the next beat or by stop()
        }
      } catch (IOException e) {
        error = progress.fail(rightRank(), "sending a keepalive to rank " + rightRank() + " at " + rightAddress
            + " failed (" + e.getMessage() + "): that rank died or closed its connection", e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    /** Stops the beat; returns what is left of a frame it was writing (the caller finishes it). */
    ByteBuffer stop() {
      stopped.countDown();
      try {
        thread.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw progress.fail(-1, "interrupted", e);
      }
      if (error != null) {
        throw error;
      }
      return frame.position() == 0 ? frame.limit(0) : frame;
    }
  }

  /** Bytes moved so far in one collective, for error messages. */
  private final class Progress {
    final Collective collective;
    final long seq;
    long sent;
    long received;

    Progress(Collective collective, long seq) {
      this.collective = collective;
      this.seq = seq;
    }

    CollectiveException fail(int peerRank, String what, Throwable cause) {
      return new CollectiveException(where(collective, seq) + what + " [after sending " + sent
          + " and receiving " + received + " bytes of this collective]", peerRank, cause);
    }
  }
}
