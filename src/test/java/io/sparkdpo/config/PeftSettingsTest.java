package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The peft: section: PEFT's defaults for absent keys, "all-linear", and checks that name the key. */
class PeftSettingsTest {
  /** Configured as ConfigLoader's mapper. */
  static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

  static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
      "down_proj");

  @Test
  void absentKeysTakeTheDefaults() throws Exception {
    PeftSettings p = YAML.readValue("r: 16\n", PeftSettings.class);
    assertEquals(new PeftSettings("lora", 16, 16.0, 0.0, ALL, List.of()), p);
    assertEquals(1.0, p.scaling());
    assertEquals(PeftSettings.defaults(), YAML.readValue("{}", PeftSettings.class));
    assertEquals(2.0, PeftSettings.defaults().scaling());
  }

  @Test
  void allLinearMeansEveryProjectionAndListsAreNormalised() throws Exception {
    assertEquals(ALL, YAML.readValue("target_modules: all-linear\n", PeftSettings.class).targetModules());
    assertEquals(ALL, YAML.readValue("target_modules: [all-linear]\n", PeftSettings.class).targetModules());
    PeftSettings p = YAML.readValue("target_modules: [v_proj, q_proj, v_proj]\nmodules_to_save: [lm_head]\n"
        + "alpha: 32\ndropout: 0.05\n", PeftSettings.class);
    assertEquals(List.of("q_proj", "v_proj"), p.targetModules());
    assertEquals(List.of("lm_head"), p.modulesToSave());
    assertEquals(0.05, p.dropout());
    assertEquals(4.0, p.scaling());
  }

  @Test
  void writtenAndReadBackItIsTheSame() throws Exception {
    PeftSettings p = new PeftSettings("lora", 4, 8, 0.1, List.of("o_proj"), List.of("embed_tokens"));
    String yaml = YAML.writeValueAsString(p);
    assertTrue(yaml.contains("target_modules") && yaml.contains("modules_to_save"), yaml);
    assertEquals(p, YAML.readValue(yaml, PeftSettings.class));
  }

  @Test
  void problemsNameTheirKey() throws Exception {
    PeftSettings bad = YAML.readValue("type: ia3\nr: 0\nalpha: -1\ndropout: 1.0\ntarget_modules: [q_proj, query]\n"
        + "modules_to_save: [classifier]\n", PeftSettings.class);
    ConfigException e = assertThrows(ConfigException.class, () -> bad.checked("train.peft"));
    for (String key : List.of("train.peft.type", "train.peft.r", "train.peft.alpha", "train.peft.dropout",
        "train.peft.target_modules", "train.peft.modules_to_save")) {
      assertTrue(e.getMessage().contains(key), key + " in " + e.getMessage());
    }
    assertTrue(e.getMessage().contains("query") && e.getMessage().contains("classifier"), e.getMessage());
    assertThrows(Exception.class, () -> YAML.readValue("rank: 8\n", PeftSettings.class));
  }
}
