package io.sparkdpo.data;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;

/** The templates spark-dpo knows by name, written out in Java (no Jinja needed). */
public enum BuiltinTemplate implements ChatTemplate {
  /**
   * Anthropic HH transcript style, used by the built-in model: {@code \n\nHuman: ...\n\nAssistant: ...}. A system
   * turn is plain text before the first marker. Round-trips HH-RLHF rows byte for byte.
   */
  HH("hh") {
    @Override
    public String renderPrompt(List<Turn> prompt) throws BadRow {
      StringBuilder sb = new StringBuilder();
      for (Turn t : prompt) {
        switch (t.role()) {
          case Turn.SYSTEM -> sb.append(t.content());
          case Turn.USER -> sb.append(HhRlhfFormat.HUMAN).append(' ').append(t.content());
          case Turn.ASSISTANT -> sb.append(HhRlhfFormat.ASSISTANT).append(' ').append(t.content());
          default -> throw unsupportedRole(t.role());
        }
      }
      return sb.append(HhRlhfFormat.ASSISTANT).toString();
    }

    @Override
    public String renderResponse(List<Turn> prompt, String response) {
      return " " + response;
    }
  },
  /** ChatML: {@code <|im_start|>role\ncontent<|im_end|>\n}. */
  CHATML("chatml") {
    @Override
    public String renderPrompt(List<Turn> prompt) {
      StringBuilder sb = new StringBuilder();
      for (Turn t : prompt) {
        sb.append("<|im_start|>").append(t.role()).append('\n').append(t.content()).append("<|im_end|>\n");
      }
      return sb.append("<|im_start|>assistant\n").toString();
    }

    @Override
    public String renderResponse(List<Turn> prompt, String response) {
      return response + "<|im_end|>\n";
    }
  },
  /** Llama 3 instruct: header ids, trimmed content, {@code <|eot_id|>} after each turn, BOS text first. */
  LLAMA3("llama3") {
    @Override
    public String renderPrompt(List<Turn> prompt) {
      StringBuilder sb = new StringBuilder("<|begin_of_text|>");
      for (Turn t : prompt) {
        header(sb, t.role()).append(t.content().strip()).append("<|eot_id|>");
      }
      return header(sb, Turn.ASSISTANT).toString();
    }

    @Override
    public String renderResponse(List<Turn> prompt, String response) {
      return response.strip() + "<|eot_id|>";
    }

    private StringBuilder header(StringBuilder sb, String role) {
      return sb.append("<|start_header_id|>").append(role).append("<|end_header_id|>\n\n");
    }
  },
  /**
   * Plain text: the turns' contents as they are, nothing added; for pairs that continue text rather than answer
   * a chat (the controlled-sentiment experiment's continuations of corpus prefixes).
   */
  PLAIN("plain") {
    @Override
    public String renderPrompt(List<Turn> prompt) {
      StringBuilder sb = new StringBuilder();
      prompt.forEach(t -> sb.append(t.content()));
      return sb.toString();
    }

    @Override
    public String renderResponse(List<Turn> prompt, String response) {
      return response;
    }
  };

  /** Bump when a built-in rendering changes, so prepared data made with the old one is not reused. */
  private static final int VERSION = 1;

  private final String templateName;

  BuiltinTemplate(String name) {
    this.templateName = name;
  }

  @Override
  public String templateName() {
    return templateName;
  }

  @Override
  public String fingerprint() {
    return HexFormat.of().formatHex(PreferencePair.sha256()
        .digest(("builtin-template:" + templateName + ":v" + VERSION).getBytes(StandardCharsets.UTF_8)));
  }

  public static BuiltinTemplate byName(String name) {
    for (BuiltinTemplate t : values()) {
      if (t.templateName.equals(name)) {
        return t;
      }
    }
    return null;
  }

  BadRow unsupportedRole(String role) {
    return new BadRow(QuarantineReason.TEMPLATE_ERROR, "prompt",
        "role '" + role + "' is not supported by the " + templateName + " template");
  }
}
