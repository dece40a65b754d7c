package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sft.peft}, {@code train.peft}, {@code pipeline.peft} and {@code model.adapter}: off by default, named. */
class PeftConfigTest {
  @TempDir
  Path dir;

  @Test
  void peftIsOffAndNoAdapterByDefault() {
    JobConfig cfg = ConfigLoader.defaults();
    assertNull(cfg.train().peft());
    assertNull(cfg.sft().peft());
    assertNull(cfg.pipeline().peft());
    assertNull(cfg.model().adapter());
  }

  @Test
  void settingTheTypeToLoraSwitchesItOnWithPeftDefaultsForTheOtherKeys() {
    JobConfig cfg = ConfigLoader.load(null, List.of("train.peft.type=lora", "train.peft.r=16",
        "model.adapter=/runs/sft/adapter"));
    PeftSettings p = cfg.train().peft();
    assertEquals("lora", p.type());
    assertEquals(16, p.r());
    assertEquals(16.0, p.alpha());
    assertEquals(1.0, p.scaling());
    assertEquals(0.0, p.dropout());
    assertEquals(List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        p.targetModules());
    assertEquals(List.of(), p.modulesToSave());
    assertNull(cfg.sft().peft(), "sft keeps its own section");
    assertEquals("/runs/sft/adapter", cfg.model().adapter());
    JsonNode shown = ConfigLoader.toRedactedTree(cfg);
    assertEquals("lora", shown.at("/train/peft/type").asText());
    assertEquals(16, shown.at("/train/peft/r").asInt());
    assertEquals("none", shown.at("/sft/peft/type").asText(), "an off section prints as its defaults");
  }

  @Test
  void aFileSetsTheSectionAndAMisspeltKeyIsNamedWithASuggestion() throws IOException {
    Path f = Files.writeString(dir.resolve("job.yaml"), "sft:\n  peft:\n    type: lora\n    alpha: 32\n"
        + "    target_modules: [q_proj, v_proj]\npipeline:\n  peft:\n    type: lora\n    r: 4\n");
    JobConfig cfg = ConfigLoader.load(f, List.of());
    assertEquals(4.0, cfg.sft().peft().scaling());
    assertEquals(List.of("q_proj", "v_proj"), cfg.sft().peft().targetModules());
    assertEquals(4, cfg.pipeline().peft().r());
    assertNull(cfg.train().peft());

    Path bad = Files.writeString(dir.resolve("bad.yaml"), "train:\n  peft:\n    type: lora\n    alph: 32\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(bad, List.of()));
    assertTrue(e.getMessage().contains("unknown key 'train.peft.alph'"), e.getMessage());
    assertTrue(e.getMessage().contains("did you mean 'alpha'"), e.getMessage());
  }

  @Test
  void badValuesAreNamedByKey() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "train.peft.type=lora", "train.peft.r=0", "train.peft.dropout=1.0", "sft.peft.type=lorax",
        "model.adapter=''")));
    String m = e.getMessage();
    assertTrue(m.contains("train.peft.r:"), m);
    assertTrue(m.contains("train.peft.dropout:"), m);
    assertTrue(m.contains("sft.peft.type:"), m);
    assertTrue(m.contains("model.adapter: must be null (none) or a PEFT adapter folder"), m);
  }

  @Test
  void aKeySetInASectionThatStaysOffIsRefusedRatherThanIgnored() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null,
        List.of("train.peft.r=32")));
    assertEquals(List.of("train.peft.r is set, but train.peft.type is none (off): set train.peft.type=lora to use it"),
        e.problems());
    assertNull(ConfigLoader.load(null, List.of("train.peft.r=8")).train().peft(), "the default value is no change");
  }
}
