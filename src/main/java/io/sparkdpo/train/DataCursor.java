package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/** Where every shard's reading stands; stored in each checkpoint as JSON. */
public record DataCursor(@JsonProperty("shards") List<ShardCursor> shards) {
  public DataCursor {
    shards = List.copyOf(shards);
  }

  public ShardCursor shard(String name) {
    return shards.stream().filter(s -> s.shard().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("the data cursor has no shard '" + name + "'; it has "
            + shards.stream().map(ShardCursor::shard).toList()));
  }

  /** This cursor with one shard's entry replaced. */
  public DataCursor with(ShardCursor updated) {
    List<ShardCursor> out = new ArrayList<>();
    boolean found = false;
    for (ShardCursor s : shards) {
      found |= s.shard().equals(updated.shard());
      out.add(s.shard().equals(updated.shard()) ? updated : s);
    }
    if (!found) {
      out.add(updated);
    }
    return new DataCursor(out);
  }

  /** One cursor holding every shard of the given ones (each rank's {@code toJson()}, as gathered to rank 0). */
  public static DataCursor merge(List<byte[]> rankCursors) {
    DataCursor all = new DataCursor(List.of());
    for (byte[] json : rankCursors) {
      for (ShardCursor c : fromJson(json).shards()) {
        all = all.with(c);
      }
    }
    return all;
  }

  public byte[] toJson() {
    try {
      return Json.MAPPER.writeValueAsBytes(this);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static DataCursor fromJson(byte[] json) {
    try {
      return Json.MAPPER.readValue(json, DataCursor.class);
    } catch (IOException e) {
      throw new UncheckedIOException("not a data cursor: " + e.getMessage(), e);
    }
  }
}
