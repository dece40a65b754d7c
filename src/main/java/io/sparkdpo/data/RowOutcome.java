package io.sparkdpo.data;

import java.io.Serializable;

/** What became of one input row: kept ({@link PreparedRow}) or quarantined ({@link QuarantineRecord}). */
public sealed interface RowOutcome extends Serializable permits PreparedRow, QuarantineRecord {
  String sourceFile();

  long sourceRow();
}
