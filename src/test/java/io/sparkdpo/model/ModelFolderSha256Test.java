package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model folders written here record their files' sha256s, and a load checks the bytes it reads against them. */
class ModelFolderSha256Test {
  @TempDir
  Path dir;

  private final Storage storage = Storage.local();

  private String saved(String name, long maxShardBytes) {
    String folder = dir.resolve(name).toString();
    try (CausalLM model = CausalLM.create(CheckpointTest.SMALL, Device.cpu(), 3)) {
      model.save(folder, storage, DataType.FLOAT32, maxShardBytes);
    }
    return folder;
  }

  @Test
  void aSavedFolderRecordsTheSha256OfConfigAndEveryWeightFile() throws Exception {
    String folder = saved("sharded", 20_000);
    Map<String, String> sums = ModelFolder.recordedSha256s(storage, folder);
    assertTrue(sums.size() > 2, sums.toString());
    assertTrue(sums.containsKey(ModelFolder.CONFIG), sums.toString());
    for (Map.Entry<String, String> e : sums.entrySet()) {
      byte[] bytes = Files.readAllBytes(Path.of(folder, e.getKey()));
      assertEquals(java.util.HexFormat.of().formatHex(Safetensors.sha256().digest(bytes)), e.getValue(), e.getKey());
    }
    try (CausalLM loaded = CausalLM.load(folder, storage, Device.cpu())) {
      assertEquals(CheckpointTest.SMALL.hiddenSize(), loaded.config().hiddenSize());
    }
  }

  @Test
  void aFlippedByteInAWeightFileFailsTheLoadNamingTheFile() throws Exception {
    String folder = saved("single", ModelFolder.DEFAULT_MAX_SHARD_BYTES);
    Path weights = Path.of(folder, ModelFolder.WEIGHTS);
    byte[] bytes = Files.readAllBytes(weights);
    bytes[bytes.length - 5] ^= 0x01; // a tensor value: the header still parses, the shapes still match
    Files.write(weights, bytes);
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> CausalLM.load(folder, storage, Device.cpu()).close());
    assertTrue(e.getMessage().contains("single/model.safetensors is corrupt: sha256 "), e.getMessage());
    assertTrue(e.getMessage().contains(ModelFolder.SHA256S + " records"), e.getMessage());

    Files.delete(Path.of(folder, ModelFolder.SHA256S)); // a folder without a record (a download) loads unchecked
    try (CausalLM loaded = CausalLM.load(folder, storage, Device.cpu())) {
      assertEquals(CheckpointTest.SMALL.numHiddenLayers(), loaded.config().numHiddenLayers());
    }
  }

  @Test
  void anEditedConfigIsCaughtToo() throws Exception {
    String folder = saved("config", ModelFolder.DEFAULT_MAX_SHARD_BYTES);
    Path config = Path.of(folder, ModelFolder.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"rms_norm_eps\"", " \"rms_norm_eps\""));
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> CausalLM.load(folder, storage, Device.cpu()).close());
    assertTrue(e.getMessage().contains("config/config.json is corrupt"), e.getMessage());
  }
}
