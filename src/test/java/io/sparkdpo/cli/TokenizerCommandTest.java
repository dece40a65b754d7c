package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class TokenizerCommandTest {
  @TempDir
  Path dir;

  @Test
  void trainsAndWritesATokenizerOfTheRequestedSize() throws IOException {
    Path corpus = dir.resolve("corpus.txt");
    Files.copy(Path.of(System.getProperty("project.basedir", "."),
        "sample-data/corpus/moby-dick/train/chapter-001.txt"), corpus);
    int code = Main.commandLine().execute("tokenizer", "--input", corpus.toString(), "--vocab-size", "300",
        "--output", dir.resolve("tok").toString(), "--special", "<|endoftext|>,<|pad|>,<|sep|>");
    assertEquals(0, code);
    var vocab = new ObjectMapper().readTree(dir.resolve("tok/tokenizer.json").toFile()).get("model").get("vocab");
    assertEquals(300, vocab.size());
    assertEquals(2, vocab.get("<|sep|>").intValue());
    assertTrue(Files.exists(dir.resolve("tok/tokenizer_config.json")));
  }

  @Test
  void failsWithTheMissingInputNamed() {
    CommandLine cli = Main.commandLine();
    StringWriter err = new StringWriter();
    cli.setErr(new PrintWriter(err));
    int code = cli.execute("tokenizer", "--input", dir.resolve("missing.txt").toString(), "--vocab-size", "300",
        "--output", dir.resolve("tok").toString());
    assertEquals(1, code);
    assertTrue(err.toString().contains("training input not found: " + dir.resolve("missing.txt")), err.toString());
    assertTrue(Files.notExists(dir.resolve("tok")));
  }
}
