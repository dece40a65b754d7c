package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.io.Json;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The eval-split loss is reported only for runs that trained on it, read from run.json's train settings. */
class EvaluateJobLossTypeTest {
  private static JsonNode dpo(String... overrides) {
    return Json.MAPPER.valueToTree(ConfigLoader.load(null, List.of(overrides)).train());
  }

  @Test
  void onlyAPlainSigmoidRunGetsTheSigmoidLoss() {
    assertTrue(EvaluateJob.plainSigmoid(dpo()));
    assertTrue(EvaluateJob.plainSigmoid(dpo("train.loss_type=[sigmoid]", "train.loss_weights=[1.0]")));
    ObjectNode older = (ObjectNode) dpo();
    older.put("lossType", "sigmoid");
    assertTrue(EvaluateJob.plainSigmoid(older), "run.json written before loss lists");
    assertFalse(EvaluateJob.plainSigmoid(dpo("train.loss_type=ipo")));
    assertFalse(EvaluateJob.plainSigmoid(dpo("train.loss_type=[sigmoid, apo_zero]")));
    assertFalse(EvaluateJob.plainSigmoid(dpo("train.loss_type=[sigmoid]", "train.loss_weights=[0.5]")));
    assertFalse(EvaluateJob.plainSigmoid(dpo("train.rpo_alpha=1.0")));
  }
}
