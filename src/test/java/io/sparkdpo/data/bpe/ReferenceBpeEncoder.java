package io.sparkdpo.data.bpe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A plain Java reading of a byte-level BPE tokenizer.json (GPT-2's algorithm: split, map bytes, then repeatedly merge
 * the adjacent pair of lowest rank), used to cross-check DJL's native tokenizer. Special tokens in the text are not
 * recognised, so inputs must not contain them.
 */
final class ReferenceBpeEncoder {
  private final Map<String, Integer> vocab = new HashMap<>();
  private final Map<String, Integer> ranks = new HashMap<>();

  ReferenceBpeEncoder(Path tokenizerJson) throws IOException {
    JsonNode model = new ObjectMapper().readTree(tokenizerJson.toFile()).get("model");
    for (Iterator<Map.Entry<String, JsonNode>> it = model.get("vocab").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      vocab.put(e.getKey(), e.getValue().intValue());
    }
    int rank = 0;
    for (JsonNode m : model.get("merges")) {
      ranks.put(m.textValue(), rank++);
    }
  }

  int[] encode(String text) {
    List<Integer> ids = new ArrayList<>();
    for (String piece : Gpt2PreTokenizer.split(text)) {
      for (String token : bpe(ByteLevel.encode(piece))) {
        Integer id = vocab.get(token);
        if (id == null) {
          throw new IllegalStateException("token not in vocab: " + token);
        }
        ids.add(id);
      }
    }
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  private List<String> bpe(String word) {
    List<String> parts = new ArrayList<>();
    for (int i = 0; i < word.length(); i++) {
      parts.add(String.valueOf(word.charAt(i)));
    }
    while (parts.size() > 1) {
      int best = -1;
      int bestRank = Integer.MAX_VALUE;
      for (int i = 0; i + 1 < parts.size(); i++) {
        Integer r = ranks.get(parts.get(i) + " " + parts.get(i + 1));
        if (r != null && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) {
        break;
      }
      String left = parts.get(best);
      String right = parts.get(best + 1);
      List<String> merged = new ArrayList<>();
      for (int i = 0; i < parts.size(); i++) {
        if (i + 1 < parts.size() && parts.get(i).equals(left) && parts.get(i + 1).equals(right)) {
          merged.add(left + right);
          i++;
        } else {
          merged.add(parts.get(i));
        }
      }
      parts = merged;
    }
    return parts;
  }
}
