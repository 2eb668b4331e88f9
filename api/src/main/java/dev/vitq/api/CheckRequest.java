package dev.vitq.api;

import java.nio.file.Path;
import java.util.Objects;

/**
 * What {@link Vitq#check} is asked: which nodes of a model an execution provider would take, and in how many
 * partitions.
 *
 * {@snippet lang="java" :
 * CheckReport r = Vitq.check(CheckRequest.of(Path.of("vit.onnx"), "nnapi"));
 * }
 *
 * @param model the ONNX model
 * @param ep the provider's name: qnn, nnapi, coreml or xnnpack
 * @param batch the size to fix a symbolic batch dimension to, or 0 to check the model as written
 */
public record CheckRequest(Path model, String ep, int batch) {
  public CheckRequest {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(ep, "ep");
  }

  /** A symbolic batch dimension fixed to 1, as a device runs the model. */
  public static CheckRequest of(Path model, String ep) {
    return new CheckRequest(model, ep, 1);
  }

  /** Symbolic batch dimensions fixed to {@code size} (0: as written). */
  public CheckRequest withBatch(int size) {
    return new CheckRequest(model, ep, size);
  }
}
