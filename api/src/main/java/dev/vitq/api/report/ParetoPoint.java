package dev.vitq.api.report;

/**
 * One candidate of a mixed-precision search, as the quantize report's Pareto chart draws it: what it costs and how
 * well it agrees with the float model.
 *
 * @param name how the candidate is called (its scheme per block, say)
 * @param bytes its file size
 * @param latencyMillis its measured latency (NaN when not measured)
 * @param agreement its top-1 agreement with the float model
 */
public record ParetoPoint(String name, long bytes, double latencyMillis, double agreement) {}
