package io.sparkdpo.distributed;

import java.io.Serializable;

/**
 * What one rank returns to the driver when its stage completes: where it ran, how far it got, and the
 * checksum of its final parameters (equal on every rank).
 */
public record WorkerReport(int rank, int attempt, String executorId, String host, long pid, String device,
                           long stepsDone, long checksum) implements Serializable {}
