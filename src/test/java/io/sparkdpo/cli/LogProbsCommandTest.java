package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class LogProbsCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path GOLDEN = Path.of(System.getProperty("project.basedir", "."),
      "src/test/resources/io/sparkdpo/model/golden/llama_gqa_tied_f32");

  @TempDir
  Path dir;

  /** The command's sums agree with the independent float64 implementation's (tools/golden/llama_golden.py). */
  @Test
  void scoresSequencesAsTheIndependentReferenceDoes() throws IOException {
    JsonNode golden = JSON.readTree(GOLDEN.resolve("golden.json").toFile()).get("sequences");
    ObjectNode input = JSON.createObjectNode();
    ArrayNode rows = input.putArray("sequences");
    for (JsonNode g : golden) {
      ObjectNode row = rows.addObject();
      row.set("prompt_ids", g.get("prompt"));
      row.set("response_ids", g.get("response"));
    }
    Path in = dir.resolve("sequences.json");
    JSON.writeValue(in.toFile(), input);
    Path out = dir.resolve("scored.json");
    int code = Main.commandLine().execute("logprobs", "--model", GOLDEN.toString(), "--sequences", in.toString(),
        "--output", out.toString());
    assertEquals(0, code);
    JsonNode scored = JSON.readTree(out.toFile());
    assertEquals("float32", scored.get("dtype").asText());
    assertEquals(golden.size(), scored.get("sequences").size());
    for (int i = 0; i < golden.size(); i++) {
      JsonNode s = scored.get("sequences").get(i);
      assertEquals(golden.get(i).get("sum_logp").asDouble(), s.get("sum_logp").asDouble(), 1e-4, "sequence " + i);
      double tokens = 0;
      for (JsonNode t : s.get("token_logps")) {
        tokens += t.asDouble();
      }
      assertEquals(golden.get(i).get("response").size(), s.get("token_logps").size());
      assertEquals(s.get("sum_logp").asDouble(), tokens, 1e-4, "token log-probs add up to the sum, sequence " + i);
    }
  }

  @Test
  void aSequenceWithoutTokenIdsIsNamed() throws IOException {
    Path in = dir.resolve("bad.json");
    Files.writeString(in, "{\"sequences\": [{\"prompt_ids\": [1, 2], \"response_ids\": [3, \"x\"]}]}");
    CommandLine cli = Main.commandLine();
    StringWriter err = new StringWriter();
    cli.setErr(new PrintWriter(err));
    int code = cli.execute("logprobs", "--model", "builtin:tiny", "--sequences", in.toString(), "--output",
        dir.resolve("out.json").toString());
    assertEquals(2, code, "a usage error");
    assertTrue(err.toString().contains(in + ": sequences[0].response_ids[1] is not a token id"), err.toString());
  }
}
