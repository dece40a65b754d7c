package io.sparkdpo.distributed;

/**
 * The collectives as they appear on the wire: every collective starts with a header naming one of
 * these, so ranks that disagree on what they are doing fail with a clear message.
 */
enum Collective {
  ALL_REDUCE_MEAN("allReduceMean"),
  ALL_REDUCE_SUM("allReduceSum"),
  ALL_GATHER("allGather"),
  BROADCAST_BYTES("broadcast(byte[])"),
  BROADCAST_FLOATS("broadcast(FloatBuffer)"),
  BARRIER("barrier"),
  ON_RANK_ZERO("onRankZero");

  private final String displayName;

  Collective(String displayName) {
    this.displayName = displayName;
  }

  String displayName() {
    return displayName;
  }

  static Collective fromWire(int code) {
    Collective[] all = values();
    return code >= 0 && code < all.length ? all[code] : null;
  }
}
