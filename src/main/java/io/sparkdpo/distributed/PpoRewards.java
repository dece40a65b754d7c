package io.sparkdpo.distributed;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.eval.RewardFunction;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.NoGrad;
import io.sparkdpo.train.PpoTrainer;
import java.util.Arrays;
import java.util.Map;

/** The two rewards PPO maximises, as {@link PpoTrainer.BatchScorer}s. */
final class PpoRewards {
  private PpoRewards() {}

  /**
   * A reward model ({@code spark-dpo reward}'s export, {@link CausalLM#loadScorer}) on the policy's own token ids:
   * prompt + response without its stop token, right-padded with its {@code pad_token_id}, one batched forward
   * without graph. That is the text the oracle scores too, and the rows the pipeline's reward model trained on
   * ({@code generate}'s pairs prepared with the plain template and {@code add_eos: false}: prompt and continuation
   * ids as generated). The driver checked that both models share a tokenizer.
   */
  static PpoTrainer.BatchScorer rewardModel(CausalLM scorer) {
    int pad = scorer.config().padTokenId();
    return (prompts, generations) -> {
      int n = prompts.size();
      int length = 0;
      for (int i = 0; i < n; i++) {
        length = Math.max(length, prompts.get(i).length + generations.get(i).tokens().length);
      }
      int[] ids = new int[n * length];
      Arrays.fill(ids, pad);
      for (int i = 0; i < n; i++) {
        int[] p = prompts.get(i);
        int[] r = generations.get(i).tokens();
        System.arraycopy(p, 0, ids, i * length, p.length);
        System.arraycopy(r, 0, ids, i * length + p.length, r.length);
      }
      try (NoGrad ignored = NoGrad.enter();
          NDManager scope = NDManager.newBaseManager(scorer.device(), "PyTorch")) {
        float[] s = scorer.scores(scope.create(ids, new Shape(n, length)), false).toFloatArray();
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
          out[i] = s[i];
        }
        return out;
      }
    };
  }

  /**
   * The ground-truth reward as an oracle: the response (without its stop token) decoded with the policy's tokenizer,
   * scored after the prompt's text as {@code generate} scores continuations. {@code texts} maps each prompt's id
   * array (the very array the trainer is given) to its text.
   */
  static PpoTrainer.BatchScorer oracle(RewardFunction reward, TextTokenizer tokenizer, Map<int[], String> texts) {
    return (prompts, generations) -> {
      double[] out = new double[prompts.size()];
      for (int i = 0; i < out.length; i++) {
        String prompt = texts.get(prompts.get(i));
        if (prompt == null) {
          throw new IllegalStateException("row " + i + ": a prompt the oracle has no text for");
        }
        out[i] = reward.score(prompt, tokenizer.decode(generations.get(i).tokens()));
      }
      return out;
    };
  }
}
