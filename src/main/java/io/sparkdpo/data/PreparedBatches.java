package io.sparkdpo.data;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/** Runs a {@link RowPreparer} over a partition in batches, so tokenization is one native call per batch. */
final class PreparedBatches implements Iterator<RowOutcome> {
  private final Iterator<RawRecord> input;
  private final RowPreparer preparer;
  private final int batchSize;
  private Iterator<RowOutcome> current = List.<RowOutcome>of().iterator();

  PreparedBatches(Iterator<RawRecord> input, RowPreparer preparer, int batchSize) {
    this.input = input;
    this.preparer = preparer;
    this.batchSize = batchSize;
  }

  @Override
  public boolean hasNext() {
    while (!current.hasNext() && input.hasNext()) {
      List<RawRecord> batch = new ArrayList<>(batchSize);
      while (batch.size() < batchSize && input.hasNext()) {
        batch.add(input.next());
      }
      current = preparer.prepare(batch).iterator();
    }
    return current.hasNext();
  }

  @Override
  public RowOutcome next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    return current.next();
  }
}
