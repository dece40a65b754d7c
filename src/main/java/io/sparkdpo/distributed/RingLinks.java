package io.sparkdpo.distributed;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.CancelledKeyException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

/**
 * A rank's two ring connections, both non-blocking on one selector so sending and receiving overlap in one
 * thread. Data flows one way: a rank writes data only to its right neighbour and reads it only from its left one.
 *
 * <p>The wire protocol, in the order a collective runs:
 * <ol>
 *   <li>Everything is a frame: a 36-byte header (magic, kind, collective, payload length, sequence number, a
 *       value, and a CRC32C over the header's first 32 bytes and the payload), then the payload. A length is
 *       checked against what this rank expects (a chunk's exact size, at most 4 KiB for an abort) before a byte
 *       of payload is read, and the CRC before the payload is used: a mismatch fails the collective naming the
 *       sender, since the bytes were corrupted on the way.</li>
 *   <li>A collective starts with a BEGIN frame (collective, sequence number, size) that the receiver checks
 *       against its own call, then DATA frames, one per buffer of the {@link RingTransfer}.</li>
 *   <li>A rank inside a collective sends a KEEPALIVE to each neighbour every {@link RingOptions#keepaliveInterval()}
 *       (forward between data frames, backward on the otherwise idle link to its left). A rank fails when a
 *       neighbour it still needs (to receive from, or to send to) sent nothing at all for the
 *       {@link RingOptions#peerTimeout()}: that neighbour is hung (a stopped process, a stuck native call) or never
 *       entered the collective, and the error names it. A neighbour that waits on someone else keeps sending
 *       keepalives, so it is never blamed. Keepalives of the collective before count too: a neighbour may still
 *       be finishing it. {@link RingOptions#ioTimeout()} is a backstop: no data moved although both neighbours
 *       are alive.</li>
 *   <li>A rank that fails sends an ABORT frame with the cause to both neighbours (when no frame is half-written
 *       there) and closes its connections; a rank receiving one fails saying that this neighbour
 *       {@linkplain CollectiveException#ABORTED_THE_RING aborted the ring}, and passes the original cause on. A
 *       closed connection fails the neighbours too, so a broken ring fails everywhere in milliseconds.</li>
 * </ol>
 *
 * <p>{@link #onRankZero} is the one exchange that is not held to the peer timeout for rank 0: it works alone (a
 * checkpoint) while the others wait. A second thread sends its keepalives to both neighbours meanwhile; the others
 * send theirs as in any collective. When the work is done rank 0 sends DONE, each rank forwards it to its right,
 * and rank 0 goes on once it has come round. A waiting rank fails when a neighbour goes silent for the peer timeout
 * (rank 0 frozen, or any rank hung; a dead process closes its connections and is noticed at once) or when rank 0
 * is not done within the rank-0 timeout.
 */
final class RingLinks implements AutoCloseable {

  private static final int MAGIC = 0x5344504F; // "SDPO"
  static final int FRAME_HEADER_BYTES = 36;
  private static final int CRC_OFFSET = 32;
  /** A deadline that never comes. */
  private static final long NEVER = Long.MAX_VALUE;
  /** An abort's reason is cut to this many bytes; a longer announced payload is refused unread. */
  static final int MAX_ABORT_BYTES = 4096;

  /** Frame kinds. */
  static final int BEGIN = 1;
  static final int DATA = 2;
  static final int KEEPALIVE = 3;
  static final int DONE = 4;
  static final int ABORT = 5;

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
  private final long peerTimeoutNanos;
  private final long rankZeroTimeoutNanos;
  private final long keepaliveNanos;
  /** Frames to the right neighbour (data, keepalives, DONE, abort). */
  private final Outbox forward;
  /** Frames to the left neighbour: keepalives and abort only. */
  private final Outbox backward;
  /** Frames from the left neighbour. */
  private final Inbox fromLeft = new Inbox(true);
  /** Frames from the right neighbour, on the link that carries data the other way. */
  private final Inbox fromRight = new Inbox(false);

  private long sequence;
  /** The selector saw the right link readable: keepalives (or an abort, or end-of-stream) wait there. */
  private boolean rightReadable;
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
    this.peerTimeoutNanos = options.peerTimeout().toNanos();
    this.rankZeroTimeoutNanos = options.rankZeroTimeout().toNanos();
    this.keepaliveNanos = options.keepaliveInterval().toNanos();
    this.forward = new Outbox(right);
    this.backward = new Outbox(left);
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
   * @throws CollectiveException naming the peer when a connection fails, closes, stalls or corrupts data
   */
  void run(Collective collective, long size, RingTransfer transfer) {
    Exchange x = begin(collective);
    try {
      pump(x, size, transfer);
    } catch (RuntimeException e) {
      abort(e, x);
      throw e;
    }
  }

  /** See {@link AllReduce#onRankZero}; the protocol is in the class comment. */
  void onRankZero(AllReduce.Work work) throws Exception {
    Exchange x = begin(Collective.ON_RANK_ZERO);
    try {
      if (rank == 0) {
        workAlone(work, x);
      }
      awaitDone(x);
    } catch (RuntimeException e) {
      if (failure == null) {
        abort(e, x);
      }
      throw e;
    }
  }

  // ---- one collective ----

  private void pump(Exchange x, long size, RingTransfer transfer) {
    forward.start(BEGIN, x, size, null);
    boolean begun = false;
    ByteBuffer in = null;
    for (;;) {
      if (forward.idle()) {
        ByteBuffer next = transfer.nextToSend();
        if (next != null) {
          forward.start(DATA, x, 0, next);
        }
      }
      if (begun && in == null) {
        in = transfer.nextToReceive();
      }
      if (begun && in == null && forward.idle()) {
        if (!transfer.sendComplete()) {
          throw new IllegalStateException(where(x)
              + "nothing left to receive but the send side waits: a bug in the transfer plan");
        }
        return;
      }
      boolean moved = flushForward(x);
      if (!begun || in != null) {
        Frame f = fromLeft.read(x, in);
        if (f != null) {
          moved = true;
          switch (f.kind) {
            case BEGIN -> {
              checkBegin(f, x, size, begun);
              begun = true;
            }
            case DATA -> {
              receivedData(x, transfer);
              in = null;
            }
            default -> throw unexpected(f, x);
          }
        } else if (fromLeft.progressed) {
          moved = true;
        }
      }
      if (moved) {
        x.lastData = System.nanoTime();
      } else {
        boolean needLeft = !begun || in != null;
        boolean needRight = !forward.idle() || !transfer.sendComplete();
        idle(x, needLeft, needRight, x.lastData + ioTimeoutNanos, NEVER);
      }
    }
  }

  private void checkBegin(Frame f, Exchange x, long size, boolean begun) {
    if (begun || f.collective != x.collective.ordinal() || f.seq != x.seq || f.value != size) {
      Collective theirs = Collective.fromWire(f.collective);
      throw x.fail(leftRank(), "ranks disagree: " + left() + " is in " + (begun ? "a second BEGIN of " : "")
          + theirs.displayName() + " #" + f.seq + " of size " + f.value + ", this rank in "
          + x.collective.displayName() + " #" + x.seq + " of size " + size
          + " (every rank must call the same collectives in the same order with the same lengths)", null);
    }
  }

  private void receivedData(Exchange x, RingTransfer transfer) {
    try {
      transfer.received();
    } catch (RingTransfer.Refused e) {
      throw x.fail(leftRank(), "protocol error: " + left() + " sent " + e.getMessage(), e);
    }
  }

  // ---- rank 0's work ----

  private void workAlone(AllReduce.Work work, Exchange x) throws Exception {
    Keepalive keepalive = new Keepalive(x);
    try {
      work.run();
    } catch (Exception | Error e) {
      keepalive.stop(false);
      // Telling the others now makes them fail at once rather than at a timeout.
      abort(x.fail(-1, "rank 0's work failed: " + e, e), x);
      throw e;
    }
    keepalive.stop(true);
    x.heardLeft = x.heardRight = x.lastData = System.nanoTime();
  }

  /**
   * Waits for DONE from the left and passes it on to the right; rank 0 sends it first and goes on once it has
   * come round. Keepalives flow as in any collective; the others give up at the rank-0 timeout.
   */
  private void awaitDone(Exchange x) {
    long limit = rank == 0 ? NEVER : x.started + rankZeroTimeoutNanos;
    boolean doneSent = false;
    boolean doneReceived = false;
    for (;;) {
      boolean sendDone = rank == 0 || doneReceived;
      if (sendDone && !doneSent && forward.idle()) {
        forward.start(DONE, x, 0, null);
        doneSent = true;
      }
      if (doneReceived && forward.idle()) {
        return;
      }
      boolean moved = flushForward(x);
      if (!doneReceived) {
        Frame f = fromLeft.read(x, null);
        if (f != null) {
          moved = true;
          if (f.kind != DONE || f.seq != x.seq || f.collective != x.collective.ordinal()) {
            throw unexpected(f, x);
          }
          doneReceived = true;
        } else if (fromLeft.progressed) {
          moved = true;
        }
      }
      if (!moved) {
        // No data flows here: rank 0's keepalives and DONE are all, so the I/O timeout does not apply.
        idle(x, !doneReceived, !forward.idle(), NEVER, limit);
      }
    }
  }

  // ---- waiting, keepalives and hung neighbours ----

  /**
   * Nothing moved: reads the right neighbour's keepalives, sends this rank's, fails naming a neighbour that this
   * rank needs and that has been silent for the peer timeout, else waits until something can move.
   */
  private void idle(Exchange x, boolean needLeft, boolean needRight, long ioDeadline, long limit) {
    long now = System.nanoTime();
    // Only when something is there, or before blaming the right neighbour: a read per wait would cost a syscall.
    if (rightReadable || (needRight && now - x.heardRight >= peerTimeoutNanos)) {
      rightReadable = false;
      readFromRight(x, needRight);
    }
    if (needLeft && now - x.heardLeft >= peerTimeoutNanos) {
      throw silent(leftRank(), leftAddress, x, "receive from");
    }
    if (needRight && now - x.heardRight >= peerTimeoutNanos) {
      throw silent(rightRank(), rightAddress, x, "send to");
    }
    if (limit != NEVER && now - limit >= 0) {
      throw x.fail(0, "rank 0 kept sending keepalives but did not finish its work alone (verifying or "
          + "writing a checkpoint) within " + TimeUnit.NANOSECONDS.toSeconds(rankZeroTimeoutNanos)
          + " s, the rank-0 timeout (save_timeout_s)", null);
    }
    if (ioDeadline != NEVER && now - ioDeadline >= 0) {
      throw x.fail(-1, "no data moved for " + TimeUnit.NANOSECONDS.toMillis(ioTimeoutNanos) + " ms although "
          + left() + " and " + right() + " kept sending keepalives (a rank further round the ring is stuck)", null);
    }
    sendKeepalives(x, now);
    long wake = now + keepaliveNanos;
    if (ioDeadline != NEVER) {
      wake = Math.min(wake, ioDeadline);
    }
    if (limit != NEVER) {
      wake = Math.min(wake, limit);
    }
    if (needLeft) {
      wake = Math.min(wake, x.heardLeft + peerTimeoutNanos);
    }
    if (needRight) {
      wake = Math.min(wake, x.heardRight + peerTimeoutNanos);
    }
    await(x, needLeft, wake);
  }

  private CollectiveException silent(int peer, InetSocketAddress address, Exchange x, String direction) {
    long ms = TimeUnit.NANOSECONDS.toMillis(peerTimeoutNanos);
    if (x.collective == Collective.ON_RANK_ZERO && peer == 0) {
      return x.fail(0, "no keepalive from rank 0 at " + address + " for " + ms + " ms while rank 0 works alone:"
          + " rank 0 is hung (a stopped process or a stuck call) or never began this work", null);
    }
    return x.fail(peer, "rank " + peer + " at " + address + " is hung: this rank must still " + direction
        + " it, and it sent nothing, neither data nor keepalive, for " + ms + " ms (a stopped process, a stuck"
        + " call, or it never entered this collective; ranks waiting inside a collective send keepalives)", null);
  }

  /** Sends a keepalive to each neighbour when one is due and no frame is half-written there. */
  private void sendKeepalives(Exchange x, long now) {
    if (forward.idle() && now - Math.max(forward.lastStart, x.started) >= keepaliveNanos) {
      forward.start(KEEPALIVE, x, 0, null);
      flushForward(x);
    }
    // The first one at once: the left neighbour may be waiting to send to this rank and needs to know it is here.
    if (backward.idle() && (backward.lastStart - x.started < 0 || now - backward.lastStart >= keepaliveNanos)) {
      backward.start(KEEPALIVE, x, 0, null);
    }
    if (!backward.idle()) {
      try {
        backward.flush();
      } catch (IOException e) {
        throw x.fail(leftRank(), "sending a keepalive to " + left() + " failed (" + e.getMessage()
            + "): that rank died or closed its connection", e);
      }
    }
  }

  /**
   * Reads what the right neighbour sent back: keepalives (it is alive) or an abort. End-of-stream is an error
   * only while this rank still has something for it; a neighbour that finished and left is reported by the next
   * write.
   */
  private void readFromRight(Exchange x, boolean needRight) {
    while (!rightClosed) {
      Frame f;
      try {
        f = fromRight.readFrom(right, x, rightRank(), rightAddress, null);
      } catch (EndOfStream e) {
        rightClosed = true;
        if (needRight) {
          throw rightClosedError(x);
        }
        return;
      }
      if (f == null) {
        return;
      }
      if (f.kind != KEEPALIVE) {
        throw x.fail(rightRank(), "protocol error: " + right() + " sent a frame of kind " + f.kind
            + " on the link that carries only keepalives to this rank", null);
      }
    }
  }

  /** Waits until a channel is ready or {@code wake} (a {@link System#nanoTime()}) has come. */
  private void await(Exchange x, boolean wantRead, long wake) {
    if (Thread.currentThread().isInterrupted()) {
      throw x.fail(-1, "interrupted", null);
    }
    long remaining = wake - System.nanoTime();
    if (remaining <= 0) {
      return;
    }
    try {
      leftKey.interestOps((wantRead ? SelectionKey.OP_READ : 0) | (backward.idle() ? 0 : SelectionKey.OP_WRITE));
      rightKey.interestOps((forward.idle() ? 0 : SelectionKey.OP_WRITE) | (rightClosed ? 0 : SelectionKey.OP_READ));
      selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(remaining)));
      if (selector.selectedKeys().contains(rightKey) && rightKey.isReadable()) {
        rightReadable = true;
      }
      selector.selectedKeys().clear();
    } catch (ClosedSelectorException | CancelledKeyException e) {
      throw x.fail(-1, "the group was closed during the collective", e);
    } catch (IOException e) {
      throw x.fail(-1, "selector failed: " + e.getMessage(), e);
    }
  }

  /** Writes what the right link takes now; true when data (not a keepalive) moved. */
  private boolean flushForward(Exchange x) {
    if (forward.idle()) {
      return false;
    }
    if (rightClosed) {
      throw rightClosedError(x);
    }
    long n;
    try {
      n = forward.flush();
    } catch (IOException e) {
      throw x.fail(rightRank(), "sending to " + right() + " failed (" + e.getMessage()
          + "): that rank died or closed its connection", e);
    }
    x.sent += n;
    return n > 0 && forward.kind != KEEPALIVE;
  }

  private CollectiveException rightClosedError(Exchange x) {
    return x.fail(rightRank(), right() + " closed its connection (it failed, was stopped, or left the group)",
        null);
  }

  private CollectiveException unexpected(Frame f, Exchange x) {
    Collective theirs = Collective.fromWire(f.collective);
    if (f.seq != x.seq || theirs != x.collective) {
      return x.fail(leftRank(), "ranks disagree: " + left() + " is in " + theirs.displayName() + " #" + f.seq
          + ", this rank in " + x.collective.displayName() + " #" + x.seq
          + " (every rank must call the same collectives in the same order)", null);
    }
    return x.fail(leftRank(), "protocol error: " + left() + " sent a frame of kind " + f.kind + " in "
        + x.collective.displayName() + " #" + x.seq + " where none of that kind belongs", null);
  }

  // ---- failure ----

  /** Checks that the group is usable and numbers the next collective. */
  private Exchange begin(Collective collective) {
    if (closed && failure == null) {
      throw new IllegalStateException("the all-reduce group is closed");
    }
    Exchange x = new Exchange(collective, ++sequence);
    if (failure != null) {
      throw new CollectiveException(where(x) + "the ring is broken by an earlier failure: "
          + failure.getMessage(), -1, failure);
    }
    return x;
  }

  /**
   * Remembers the failure, tells both neighbours why (best effort: not where a frame is half-written, and
   * without waiting), and closes the connections.
   */
  private void abort(RuntimeException e, Exchange x) {
    failure = e;
    String origin = e instanceof CollectiveException c && c.origin() != null ? c.origin() : e.getMessage();
    byte[] reason = String.valueOf(origin).getBytes(StandardCharsets.UTF_8);
    ByteBuffer payload = ByteBuffer.wrap(reason, 0, Math.min(reason.length, MAX_ABORT_BYTES));
    for (Outbox out : new Outbox[] {forward, backward}) {
      if (out.idle() && out.channel.isOpen()) {
        out.start(ABORT, x, 0, payload.duplicate());
        try {
          out.flush();
        } catch (IOException ignored) {
          // That neighbour is gone: it learns nothing more either way.
        }
      }
    }
    close();
  }

  private String where(Exchange x) {
    return "rank " + rank + " of " + worldSize + ", " + x.collective.displayName() + " #" + x.seq + ": ";
  }

  private String left() {
    return "rank " + leftRank() + " at " + leftAddress;
  }

  private String right() {
    return "rank " + rightRank() + " at " + rightAddress;
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

  // ---- frames ----

  /** A frame header that has arrived whole. */
  private record Frame(int kind, int collective, long seq, long value) {}

  /** Frames going out on one channel: one at a time, the header and payload written in one gathering write. */
  private static final class Outbox {
    final SocketChannel channel;
    final ByteBuffer header = ByteBuffer.allocateDirect(FRAME_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    final CRC32C crc = new CRC32C();
    final ByteBuffer[] both = new ByteBuffer[2];
    ByteBuffer body;
    int kind;
    long lastStart = Long.MIN_VALUE / 2;

    Outbox(SocketChannel channel) {
      this.channel = channel;
      header.limit(0);
    }

    boolean idle() {
      return !header.hasRemaining() && (body == null || !body.hasRemaining());
    }

    /** Frames {@code payload} (position to limit, left untouched until written; null for none). */
    void start(int frameKind, Exchange x, long value, ByteBuffer payload) {
      kind = frameKind;
      header.clear();
      header.putInt(MAGIC).putInt(frameKind).putInt(x.collective.ordinal())
          .putInt(payload == null ? 0 : payload.remaining()).putLong(x.seq).putLong(value);
      crc.reset();
      crc.update(header.duplicate().flip());
      if (payload != null) {
        crc.update(payload.duplicate());
      }
      header.putInt((int) crc.getValue()).flip();
      body = payload;
      lastStart = System.nanoTime();
    }

    /** Writes what the socket takes without blocking; returns the bytes written. */
    long flush() throws IOException {
      if (body == null) {
        return channel.write(header);
      }
      both[0] = header;
      both[1] = body;
      return channel.write(both);
    }
  }

  /** The end of a stream where a frame should have come. */
  private static final class EndOfStream extends Exception {
    private static final long serialVersionUID = 1L;

    EndOfStream() {
      super(null, null, false, false);
    }
  }

  /**
   * Frames coming in on one channel, read without blocking: the header, then (for DATA into the transfer's
   * buffer, for ABORT into a small one) the payload, which is only handed on once its checksum matches.
   * Keepalives are consumed here.
   */
  private final class Inbox {
    final boolean isLeft;
    final ByteBuffer header = ByteBuffer.allocateDirect(FRAME_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    final CRC32C crc = new CRC32C();
    Frame frame;
    ByteBuffer body;
    int bodyStart;
    /** Whether the last read moved any byte of a frame of this collective other than a keepalive. */
    boolean progressed;

    Inbox(boolean isLeft) {
      this.isLeft = isLeft;
    }

    /** The left neighbour's next whole frame other than a keepalive, or null for now. */
    Frame read(Exchange x, ByteBuffer dataBuffer) {
      try {
        return readFrom(left, x, leftRank(), leftAddress, dataBuffer);
      } catch (EndOfStream e) {
        throw x.fail(leftRank(), left() + " closed its connection (it failed, was stopped, or left the group)",
            null);
      }
    }

    Frame readFrom(SocketChannel channel, Exchange x, int peer, InetSocketAddress address, ByteBuffer dataBuffer)
        throws EndOfStream {
      progressed = false;
      String who = "rank " + peer + " at " + address;
      for (;;) {
        if (frame == null) {
          if (fill(channel, header, x, who) == 0 && header.hasRemaining()) {
            return null;
          }
          if (header.hasRemaining()) {
            continue;
          }
          frame = parseHeader(x, peer, who, dataBuffer);
          if (frame == null) {
            continue; // a keepalive, consumed
          }
        }
        if (body != null && body.hasRemaining()) {
          int n = fill(channel, body, x, who);
          if (n > 0) {
            progressed = true;
            heard(x, isLeft);
          }
          if (body.hasRemaining()) {
            if (n == 0) {
              return null;
            }
            continue;
          }
        }
        Frame whole = frame;
        verify(x, peer, who);
        frame = null;
        header.clear();
        if (whole.kind == ABORT) {
          byte[] reason = new byte[body.limit()];
          body.get(0, reason);
          String origin = new String(reason, StandardCharsets.UTF_8);
          throw new CollectiveException(where(x) + who + " " + CollectiveException.ABORTED_THE_RING + ": " + origin,
              peer, null, origin);
        }
        body = null;
        return whole;
      }
    }

    private int fill(SocketChannel channel, ByteBuffer target, Exchange x, String who) throws EndOfStream {
      int n;
      try {
        n = channel.read(target);
      } catch (IOException e) {
        throw x.fail(channel == left ? leftRank() : rightRank(), "receiving from " + who + " failed ("
            + e.getMessage() + "): that rank died or closed its connection", e);
      }
      if (n < 0) {
        throw new EndOfStream();
      }
      if (isLeft) {
        x.received += n;
      }
      return n;
    }

    /**
     * Checks a whole header before anything is read into or allocated for its payload. Returns null for a
     * keepalive (consumed: it proves the peer alive when it is of this collective or the one before).
     */
    private Frame parseHeader(Exchange x, int peer, String who, ByteBuffer dataBuffer) {
      header.flip();
      int magic = header.getInt(0);
      int kind = header.getInt(4);
      int code = header.getInt(8);
      int length = header.getInt(12);
      long seq = header.getLong(16);
      long value = header.getLong(24);
      if (magic != MAGIC || Collective.fromWire(code) == null || kind < BEGIN || kind > ABORT) {
        throw x.fail(peer, "protocol error: " + who + " sent an unreadable frame header (magic "
            + Integer.toHexString(magic) + ", kind " + kind + ", collective " + code + ")", null);
      }
      Frame f = new Frame(kind, code, seq, value);
      switch (kind) {
        case DATA -> {
          int expected = dataBuffer == null ? -1 : dataBuffer.remaining();
          if (length != expected) {
            throw x.fail(peer, "protocol error: " + who + " sent a data frame of " + length + " bytes where "
                + (expected < 0 ? "none" : expected + " bytes") + " belong" + (expected < 0 ? "s" : "")
                + " (a corrupt frame, or a peer that cuts the data differently)", null);
          }
          if (seq != x.seq || code != x.collective.ordinal()) {
            throw unexpected(f, x);
          }
          body = dataBuffer;
        }
        case ABORT -> {
          if (length < 0 || length > MAX_ABORT_BYTES) {
            throw x.fail(peer, "protocol error: " + who + " announced an abort of " + length + " bytes (at most "
                + MAX_ABORT_BYTES + ")", null);
          }
          body = ByteBuffer.allocate(length);
        }
        default -> {
          if (length != 0) {
            throw x.fail(peer, "protocol error: " + who + " sent a frame of kind " + kind + " with " + length
                + " bytes of payload, where none belong", null);
          }
          body = null;
        }
      }
      bodyStart = body == null ? 0 : body.position();
      if (kind == KEEPALIVE) {
        verify(x, peer, who);
        if (seq == x.seq && code != x.collective.ordinal()) {
          // A neighbour waiting in another collective of the same number would otherwise look merely slow.
          throw x.fail(peer, "ranks disagree: " + who + " is in " + Collective.fromWire(code).displayName() + " #"
              + seq + ", this rank in " + x.collective.displayName() + " #" + x.seq
              + " (every rank must call the same collectives in the same order)", null);
        }
        header.clear();
        frame = null;
        if (seq >= x.seq - 1) {
          heard(x, isLeft);
        }
        return null;
      }
      if (seq == x.seq) {
        progressed = true;
        heard(x, isLeft);
      }
      return f;
    }

    /** The CRC over the header's first 32 bytes and the payload must be the one the header carries. */
    private void verify(Exchange x, int peer, String who) {
      crc.reset();
      crc.update(header.duplicate().position(0).limit(CRC_OFFSET));
      int length = 0;
      if (body != null) {
        ByteBuffer payload = body.duplicate();
        payload.limit(payload.position()).position(bodyStart);
        length = payload.remaining();
        crc.update(payload);
      }
      int expected = header.getInt(CRC_OFFSET);
      int actual = (int) crc.getValue();
      if (expected != actual) {
        throw x.fail(peer, "checksum mismatch: a frame of " + length + " bytes from " + who + " arrived corrupted"
            + " (CRC32C " + Integer.toHexString(actual) + ", sent as " + Integer.toHexString(expected)
            + "): the data was damaged between the ranks (memory, NIC, network)", null);
      }
    }
  }

  private void heard(Exchange x, boolean fromTheLeft) {
    if (fromTheLeft) {
      x.heardLeft = System.nanoTime();
    } else {
      x.heardRight = System.nanoTime();
    }
  }

  /**
   * Rank 0's keepalives to both neighbours while it works alone, from their own thread (the rank's thread is busy
   * with the work and does not touch the links meanwhile; joining the thread hands them back).
   */
  private final class Keepalive {
    private final Exchange x;
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final Thread thread;
    private volatile CollectiveException error;

    Keepalive(Exchange x) {
      this.x = x;
      this.thread = new Thread(this::beat, "ring-keepalive-rank-" + rank);
      thread.setDaemon(true);
      thread.start();
    }

    private void beat() {
      try {
        // Never interrupted: an interrupt during a channel write would close the channel.
        while (!stopped.await(keepaliveNanos, TimeUnit.NANOSECONDS)) {
          for (Outbox out : new Outbox[] {forward, backward}) {
            if (out.idle()) {
              out.start(KEEPALIVE, x, 0, null);
            }
            out.flush(); // non-blocking; a partial frame is finished on the next beat or after stop()
          }
        }
      } catch (IOException e) {
        error = x.fail(-1, "sending a keepalive while rank 0 works alone failed (" + e.getMessage()
            + "): a neighbour died or closed its connection", e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    /** Stops the beat; with {@code rethrow}, throws what it failed with. */
    void stop(boolean rethrow) {
      stopped.countDown();
      try {
        thread.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw x.fail(-1, "interrupted", e);
      }
      if (rethrow && error != null) {
        throw error;
      }
    }
  }

  /** One collective on this rank: bytes moved and when each neighbour was last heard, for errors and timeouts. */
  private final class Exchange {
    final Collective collective;
    final long seq;
    final long started = System.nanoTime();
    long heardLeft = started;
    long heardRight = started;
    long lastData = started;
    long sent;
    long received;

    Exchange(Collective collective, long seq) {
      this.collective = collective;
      this.seq = seq;
    }

    String bytes() {
      return " [after sending " + sent + " and receiving " + received + " bytes of this collective]";
    }

    CollectiveException fail(int peerRank, String what, Throwable cause) {
      return new CollectiveException(where(this) + what + bytes(), peerRank, cause);
    }
  }
}
