package io.sparkdpo.data;

import java.util.List;

/**
 * Renders a normalised conversation as model text. The prompt rendering ends with the header that asks the model
 * to answer; a response rendering is exactly the text that follows it in the full conversation (including any
 * end-of-turn marker), so prompt + response is what the model sees when trained on that response.
 */
public interface ChatTemplate {
  /** @return {@code hh}, {@code chatml}, {@code llama3}, {@code plain}, {@code tokenizer} or a template file's path */
  String templateName();

  /** sha256 of everything that decides the rendering. */
  String fingerprint();

  /** The prompt turns followed by the generation header. */
  String renderPrompt(List<Turn> prompt) throws BadRow;

  /** The text that follows {@link #renderPrompt} when the assistant answers {@code response}. */
  String renderResponse(List<Turn> prompt, String response) throws BadRow;
}
