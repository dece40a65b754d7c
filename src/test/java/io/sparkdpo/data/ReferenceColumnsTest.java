package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

class ReferenceColumnsTest {
  @Test
  void picksTrlsNameThenTheLegacyNameThenNone() {
    assertEquals("ref_chosen_logps", ReferenceColumns.chosenIn(List.of("pair_id", "ref_chosen_logps")));
    assertEquals("ref_rejected_logps", ReferenceColumns.rejectedIn(List.of("ref_rejected_logp", "ref_rejected_logps")));
    assertEquals("ref_chosen_logp", ReferenceColumns.chosenIn(List.of("pair_id", "ref_chosen_logp")));
    assertEquals("ref_rejected_logp", ReferenceColumns.rejectedIn(List.of("ref_rejected_logp")));
    assertNull(ReferenceColumns.chosenIn(List.of("pair_id", "ref_rejected_logps", "ref_chosen_tokens")));
    assertNull(ReferenceColumns.rejectedIn(List.of()));
  }
}
