package dev.vitq.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * What {@link Vitq#compare} measures: a reference and other models on the same images and machine, in one run.
 *
 * {@snippet lang="java" :
 * Reports.Compare c = Vitq.compare(CompareRequest.of(Path.of("vit.onnx"), List.of(Path.of("vit-w8a8.onnx")),
 *     Path.of("val/")), Progress.NONE);
 * }
 *
 * @param reference the reference model (usually the float original); its row comes first
 * @param models the models compared with it
 * @param data labelled images
 * @param threads ONNX Runtime intra-op threads (0: ONNX Runtime's choice)
 * @param runs timed batch-1 runs (batch-32 runs are a fifth of it, at least 5)
 */
public record CompareRequest(Path reference, List<Path> models, Path data, int threads, int runs) {
  public CompareRequest {
    Objects.requireNonNull(reference, "reference");
    models = List.copyOf(models);
    Objects.requireNonNull(data, "data");
  }

  /** Default threads and 100 timed batch-1 runs. */
  public static CompareRequest of(Path reference, List<Path> models, Path data) {
    return new CompareRequest(reference, models, data, 0, 100);
  }

  public CompareRequest withThreads(int n) {
    return new CompareRequest(reference, models, data, n, runs);
  }

  public CompareRequest withRuns(int n) {
    return new CompareRequest(reference, models, data, threads, n);
  }
}
