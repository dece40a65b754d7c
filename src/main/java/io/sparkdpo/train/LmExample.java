package io.sparkdpo.train;

/**
 * One causal-LM training sequence: {@code prompt + response}, the loss on the response's tokens (and on the prompt's
 * too when the objective trains the whole sequence). A plain-text window is all response.
 */
public record LmExample(String id, int[] prompt, int[] response) {
  public LmExample {
    if (response.length == 0) {
      throw new IllegalArgumentException("example " + id + " has an empty response");
    }
  }

  public int length() {
    return prompt.length + response.length;
  }
}
