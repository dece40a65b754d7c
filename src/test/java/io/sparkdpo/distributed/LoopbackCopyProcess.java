package io.sparkdpo.distributed;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;

/**
 * The baseline for the all-reduce benchmark: one JVM sends N bytes over one TCP connection to
 * another, with the ring's socket settings and chunk-sized writes. {@code receive <bytes> <rounds>}
 * prints {@code listening <port>}; {@code send <port> <bytes> <rounds>} prints, per round,
 * {@code result <nanos>} from the first byte written to the receiver's one-byte acknowledgement.
 */
public final class LoopbackCopyProcess {

  private LoopbackCopyProcess() {}

  public static void main(String[] args) throws Exception {
    RingOptions options = RingOptions.defaults();
    if (args[0].equals("receive")) {
      receive(Long.parseLong(args[1]), Integer.parseInt(args[2]), options);
    } else {
      send(Integer.parseInt(args[1]), Long.parseLong(args[2]), Integer.parseInt(args[3]), options);
    }
    System.out.println("done");
  }

  private static void receive(long bytes, int rounds, RingOptions options) throws Exception {
    try (ServerSocketChannel listener = ServerSocketChannel.open()) {
      listener.setOption(StandardSocketOptions.SO_RCVBUF, options.socketBufferBytes());
      listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      System.out.println("listening " + ((InetSocketAddress) listener.getLocalAddress()).getPort());
      try (SocketChannel channel = listener.accept()) {
        configure(channel, options);
        ByteBuffer buffer = ByteBuffer.allocateDirect(options.chunkBytes());
        ByteBuffer ack = ByteBuffer.allocateDirect(1);
        for (int round = 0; round < rounds; round++) {
          long left = bytes;
          while (left > 0) {
            buffer.clear().limit((int) Math.min(buffer.capacity(), left));
            int n = channel.read(buffer);
            if (n < 0) {
              throw new IllegalStateException("sender closed early");
            }
            left -= n;
          }
          channel.write(ack.clear());
        }
      }
    }
  }

  private static void send(int port, long bytes, int rounds, RingOptions options)
      throws Exception {
    try (SocketChannel channel = SocketChannel.open()) {
      configure(channel, options);
      channel.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
      ByteBuffer buffer = ByteBuffer.allocateDirect(options.chunkBytes());
      ByteBuffer ack = ByteBuffer.allocateDirect(1);
      for (int round = 0; round < rounds; round++) {
        long start = System.nanoTime();
        long left = bytes;
        while (left > 0) {
          buffer.clear().limit((int) Math.min(buffer.capacity(), left));
          while (buffer.hasRemaining()) {
            left -= channel.write(buffer);
          }
        }
        if (channel.read(ack.clear()) != 1) {
          throw new IllegalStateException("receiver closed early");
        }
        System.out.println("result " + (System.nanoTime() - start));
      }
    }
  }

  private static void configure(SocketChannel channel, RingOptions options) throws Exception {
    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
    channel.setOption(StandardSocketOptions.SO_SNDBUF, options.socketBufferBytes());
    channel.setOption(StandardSocketOptions.SO_RCVBUF, options.socketBufferBytes());
  }
}
