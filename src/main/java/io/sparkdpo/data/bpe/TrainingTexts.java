package io.sparkdpo.data.bpe;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The texts a tokenizer trains on, read from local files: a {@code .jsonl} file gives every string value of every
 * line (so a preference file contributes its prompts and responses, not its JSON syntax), a {@code .json} file every
 * string value of the document, and any other file its whole content. A folder stands for its {@code .txt},
 * {@code .md}, {@code .jsonl} and {@code .json} files, recursively, in path order.
 */
public final class TrainingTexts {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private TrainingTexts() {}

  /** The files {@code inputs} stand for, in the order they are read. */
  public static List<Path> files(List<Path> inputs) throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path input : inputs) {
      if (Files.isDirectory(input)) {
        try (Stream<Path> walk = Files.walk(input)) {
          walk.filter(Files::isRegularFile).filter(TrainingTexts::isTextFile).sorted().forEach(files::add);
        }
      } else if (Files.isRegularFile(input)) {
        files.add(input);
      } else {
        throw new IOException("training input not found: " + input);
      }
    }
    if (files.isEmpty()) {
      throw new IOException("no training files in " + inputs);
    }
    return files;
  }

  /** Every text of every file {@code inputs} stand for, in order. */
  public static List<String> readAll(List<Path> inputs) throws IOException {
    List<String> texts = new ArrayList<>();
    for (Path file : files(inputs)) {
      read(file, texts::add);
    }
    return texts;
  }

  /** Passes every text of {@code file} to {@code sink}. */
  public static void read(Path file, Consumer<String> sink) throws IOException {
    String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
    if (name.endsWith(".jsonl")) {
      try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
        String line;
        int row = 0;
        while ((line = reader.readLine()) != null) {
          row++;
          if (!line.isBlank()) {
            strings(parse(line, file + ":" + row), sink);
          }
        }
      } catch (CharacterCodingException e) {
        throw new IOException(file + ": not valid UTF-8", e);
      }
    } else {
      String text = utf8(file);
      if (name.endsWith(".json")) {
        strings(parse(text, file.toString()), sink);
      } else {
        sink.accept(text);
      }
    }
  }

  private static boolean isTextFile(Path p) {
    String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
    return !name.startsWith(".") && (name.endsWith(".txt") || name.endsWith(".md") || name.endsWith(".jsonl")
        || name.endsWith(".json"));
  }

  private static String utf8(Path file) throws IOException {
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(file)))
          .toString();
    } catch (CharacterCodingException e) {
      throw new IOException(file + ": not valid UTF-8", e);
    }
  }

  private static JsonNode parse(String json, String where) throws IOException {
    try {
      return MAPPER.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IOException(where + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
    }
  }

  private static void strings(JsonNode node, Consumer<String> sink) {
    if (node.isTextual()) {
      sink.accept(node.textValue());
    } else if (node.isContainerNode()) {
      for (Iterator<JsonNode> it = node.elements(); it.hasNext(); ) {
        strings(it.next(), sink);
      }
    }
  }
}
