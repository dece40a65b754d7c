package io.sparkdpo.data;

import java.io.Serializable;
import java.util.Objects;

/** One message of a conversation: a role ({@code system}, {@code user}, {@code assistant}, ...) and its text. */
public record Turn(String role, String content) implements Serializable {
  public static final String SYSTEM = "system";
  public static final String USER = "user";
  public static final String ASSISTANT = "assistant";

  public Turn {
    Objects.requireNonNull(role, "role");
    Objects.requireNonNull(content, "content");
  }

  public static Turn user(String content) {
    return new Turn(USER, content);
  }

  public static Turn assistant(String content) {
    return new Turn(ASSISTANT, content);
  }
}
