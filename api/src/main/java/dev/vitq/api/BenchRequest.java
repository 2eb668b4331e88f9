package dev.vitq.api;

/**
 * What {@link Vitq#bench} (a model) or {@link Vitq#benchBundle} (a device/cloud bundle) is asked to time. Start from
 * {@link #of}.
 *
 * {@snippet lang="java" :
 * Reports.Bench b = Vitq.bench(BenchRequest.of(Path.of("vit-w8a8.onnx")).withBatch(32));
 * }
 *
 * @param target the ONNX model, or the bundle folder
 * @param batch images per run
 * @param threads ONNX Runtime intra-op threads (0: ONNX Runtime's choice)
 * @param runs timed runs, after five untimed ones
 */
public record BenchRequest(java.nio.file.Path target, int batch, int threads, int runs) {
  public BenchRequest {
    java.util.Objects.requireNonNull(target, "target");
  }

  /** Batch 1, default threads, 50 timed runs. */
  public static BenchRequest of(java.nio.file.Path target) {
    return new BenchRequest(target, 1, 0, 50);
  }

  public BenchRequest withBatch(int n) {
    return new BenchRequest(target, n, threads, runs);
  }

  public BenchRequest withThreads(int n) {
    return new BenchRequest(target, batch, n, runs);
  }

  public BenchRequest withRuns(int n) {
    return new BenchRequest(target, batch, threads, n);
  }
}
