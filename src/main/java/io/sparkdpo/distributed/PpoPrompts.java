package io.sparkdpo.distributed;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.util.ArrayList;
import java.util.List;

/**
 * PPO's prompts: the {@code prompts.jsonl} files {@code spark-dpo generate} writes (one {@link TextPrompts.Prompt} a
 * line: index, text, token ids, source), read in the order of {@code ppo.prompts} and then of their lines. The ids
 * are the policy's tokens, so each must lie in its vocabulary; a bad line is named with its file, line and field.
 */
final class PpoPrompts {
  private PpoPrompts() {}

  static List<TextPrompts.Prompt> read(Storage storage, List<String> files, int vocabSize) {
    if (files.isEmpty()) {
      throw new IllegalArgumentException("ppo.prompts is empty: give the prompts.jsonl files spark-dpo generate wrote "
          + "(e.g. --prompts runs/generated/prompts.jsonl)");
    }
    List<TextPrompts.Prompt> out = new ArrayList<>();
    for (String file : files) {
      if (!storage.exists(file)) {
        throw new IllegalArgumentException("ppo.prompts: " + file + " does not exist");
      }
      String[] lines = storage.readString(file).split("\n");
      for (int i = 0; i < lines.length; i++) {
        if (lines[i].isBlank()) {
          continue;
        }
        TextPrompts.Prompt p;
        try {
          p = Json.LINES.readValue(lines[i], TextPrompts.Prompt.class);
        } catch (JsonProcessingException e) {
          throw new IllegalArgumentException(file + ", line " + (i + 1) + ": not a prompt: " + e.getOriginalMessage(),
              e);
        }
        String where = file + ", line " + (i + 1);
        if (p.ids() == null || p.ids().length == 0) {
          throw new IllegalArgumentException(where + ": field ids is missing or empty (PPO samples from token ids)");
        }
        if (p.text() == null) {
          throw new IllegalArgumentException(where + ": field text is missing (the oracle reward reads it)");
        }
        for (int id : p.ids()) {
          if (id < 0 || id >= vocabSize) {
            throw new IllegalArgumentException(where + ": field ids holds token " + id + ", outside the policy's "
                + "vocabulary of " + vocabSize + " (prompts tokenized for another model?)");
          }
        }
        out.add(p);
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("ppo.prompts " + files + " hold no prompts");
    }
    return out;
  }
}
