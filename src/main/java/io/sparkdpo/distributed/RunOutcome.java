package io.sparkdpo.distributed;

import java.util.List;

/**
 * A completed distributed run.
 *
 * @param stepsDone optimizer steps completed (the schedule's total)
 * @param checksum the final parameter checksum, equal on every rank
 * @param attempts stage submissions it took (1 without failures)
 * @param reports every rank's report from the successful attempt, by rank
 * @param failures the description of each failed attempt, oldest first
 */
public record RunOutcome(long stepsDone, long checksum, int attempts, List<WorkerReport> reports,
                         List<String> failures) {}
