package io.sparkdpo.eval;

/**
 * The ground-truth reward of the controlled-generation experiment: it labels sampled continuations (best is
 * {@code chosen}, worst {@code rejected}) and scores the evaluation's samples. The policy never sees it.
 *
 * <p>To plug in your own, implement this interface in a class with a public no-argument constructor, put it on the
 * classpath and set {@code evaluate.reward} to its fully-qualified name (see {@link RewardFunctions#load}).
 * Implementations must be deterministic and safe to call from several threads.
 */
public interface RewardFunction {

  /** A short name for reports and manifests, e.g. {@code afinn-111}. */
  String name();

  /**
   * The reward of {@code continuation} written after {@code prompt}: a finite number, higher is better. The prompt
   * is given for rewards that judge the continuation in context; it is the same for every continuation compared.
   */
  double score(String prompt, String continuation);
}
