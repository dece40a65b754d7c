package io.sparkdpo.data.bpe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainingTextsTest {
  @TempDir
  Path dir;

  private List<String> read(Path... inputs) throws IOException {
    return TrainingTexts.readAll(List.of(inputs));
  }

  @Test
  void takesTheStringValuesOfEveryJsonLineNotItsSyntax() throws IOException {
    Path f = dir.resolve("pairs.jsonl");
    Files.writeString(f, "{\"chosen\": \"\\n\\nHuman: hi\", \"rejected\": \"no\", \"score\": 3}\n\n"
        + "{\"prompt\": [{\"role\": \"user\", \"content\": \"鯨?\"}], \"chosen\": \"yes\"}\n");
    assertEquals(List.of("\n\nHuman: hi", "no", "user", "鯨?", "yes"), read(f));
  }

  @Test
  void readsAFolderInPathOrderKeepingOnlyTextFiles() throws IOException {
    Files.createDirectories(dir.resolve("b"));
    Files.writeString(dir.resolve("b/2.txt"), "two");
    Files.writeString(dir.resolve("a.txt"), "one");
    Files.writeString(dir.resolve("LICENSE"), "legal text");
    Files.writeString(dir.resolve(".hidden.txt"), "hidden");
    Files.write(dir.resolve("model.bin"), new byte[] {1, 2, 3});
    assertEquals(List.of("one", "two"), read(dir));
  }

  @Test
  void namesTheFileAndLineOfBrokenJson() throws IOException {
    Path f = dir.resolve("bad.jsonl");
    Files.writeString(f, "{\"chosen\": \"ok\"}\n{\"chosen\": \n");
    IOException e = assertThrows(IOException.class, () -> read(f));
    assertTrue(e.getMessage().startsWith(f + ":2: not valid JSON"), e.getMessage());
  }

  @Test
  void refusesFilesThatAreNotUtf8AndInputsThatDoNotExist() throws IOException {
    Path f = dir.resolve("latin1.txt");
    Files.write(f, new byte[] {'c', 'a', 'f', (byte) 0xE9});
    IOException e = assertThrows(IOException.class, () -> read(f));
    assertEquals(f + ": not valid UTF-8", e.getMessage());
    IOException missing = assertThrows(IOException.class, () -> read(dir.resolve("nope.txt")));
    assertEquals("training input not found: " + dir.resolve("nope.txt"), missing.getMessage());
  }
}
