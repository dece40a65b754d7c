package io.sparkdpo.data.bpe;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class Gpt2PreTokenizerTest {
  @Test
  void keepsTheLeadingSpaceWithTheWordAndSplitsContractionsDigitsAndPunctuation() {
    assertEquals(List.of("I", "'ve", " seen", " 3", " whales", "!!", " It", "'s", " 2024", "."),
        Gpt2PreTokenizer.split("I've seen 3 whales!! It's 2024."));
  }

  @Test
  void leavesTheLastSpaceOfARunToTheNextWord() {
    assertEquals(List.of("a", "  ", " b", "\n", "\n", "Human", ":", " hi", "  "),
        Gpt2PreTokenizer.split("a   b\n\nHuman: hi  "));
  }

  @Test
  void treatsUnicodeWhiteSpaceAsWhiteSpace() {
    // U+3000 (ideographic space) and U+00A0 are white space for Oniguruma's \s, which Hugging Face uses.
    assertEquals(List.of("你好", "\u3000", "世界", "\u00a0", "x"), Gpt2PreTokenizer.split("你好\u3000世界\u00a0x"));
  }

  @Test
  void piecesConcatenateToTheInput() {
    String text = "Call me Ishmael.—Some years ago 🐋🐳 (never mind) 'tis 42nd\t\r\nمرحبا";
    assertEquals(text, String.join("", Gpt2PreTokenizer.split(text)));
  }
}
