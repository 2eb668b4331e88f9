package dev.vitq.cli;

import dev.vitq.converter.Target;
import dev.vitq.models.VitqException;
import picocli.CommandLine.Option;

/** {@code --target cpu|qdq|qnn|nnapi|coreml|xnnpack}, shared by {@code quantize} and {@code export}. */
final class TargetOption {
  @Option(names = "--target", defaultValue = "cpu", paramLabel = "T",
      description = "The runtime the artifact is for: cpu (ONNX Runtime's CPU provider, with its contrib kernels), "
          + "qdq (standard ONNX operators in QDQ form, for any provider that takes it), or qdq fitted to a "
          + "provider: qnn, nnapi, coreml, xnnpack (default: ${DEFAULT-VALUE}).")
  String target;

  Target get() throws VitqException {
    return Target.parse(target);
  }
}
