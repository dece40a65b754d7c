package io.sparkdpo.data;

import java.util.Collection;
import java.util.List;

/**
 * The names of a referenced shard's reference columns. The log-probs carry TRL's names (DPOTrainer's
 * {@code precompute_ref_log_probs} adds {@code ref_chosen_logps} and {@code ref_rejected_logps}), so a referenced
 * folder reads like a TRL dataset; shards written before that used {@code ref_chosen_logp} / {@code ref_rejected_logp}
 * and are still read. The token counts have no TRL counterpart and keep their names.
 */
public final class ReferenceColumns {
  public static final String CHOSEN_LOGPS = "ref_chosen_logps";
  public static final String REJECTED_LOGPS = "ref_rejected_logps";
  /** The names before TRL's: read, never written. */
  public static final String LEGACY_CHOSEN_LOGP = "ref_chosen_logp";
  public static final String LEGACY_REJECTED_LOGP = "ref_rejected_logp";
  public static final String CHOSEN_TOKENS = "ref_chosen_tokens";
  public static final String REJECTED_TOKENS = "ref_rejected_tokens";
  /** Every column the reference stage owns, under any name it ever had. */
  public static final List<String> ALL = List.of(CHOSEN_LOGPS, REJECTED_LOGPS, LEGACY_CHOSEN_LOGP,
      LEGACY_REJECTED_LOGP, CHOSEN_TOKENS, REJECTED_TOKENS);

  private ReferenceColumns() {}

  /** The chosen log-prob column among {@code columns}: TRL's name, else the legacy one; null when neither is there. */
  public static String chosenIn(Collection<String> columns) {
    return firstIn(columns, CHOSEN_LOGPS, LEGACY_CHOSEN_LOGP);
  }

  /** The rejected log-prob column among {@code columns}, as {@link #chosenIn}. */
  public static String rejectedIn(Collection<String> columns) {
    return firstIn(columns, REJECTED_LOGPS, LEGACY_REJECTED_LOGP);
  }

  private static String firstIn(Collection<String> columns, String name, String legacy) {
    return columns.contains(name) ? name : columns.contains(legacy) ? legacy : null;
  }
}
