package dev.vitq.cli;

import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.Scheme;
import picocli.CommandLine.Option;

/** {@code --scheme} and {@code --method}, shared by the commands that quantize. */
final class SchemeOptions {
  @Option(names = "--scheme", defaultValue = "w8a8", paramLabel = "S",
      description = "w8a8, w6a6, w4a8, w4a4, w8a16, w4a16 (16-bit activations, as Qualcomm's HTP runs them), or "
          + "auto: mixed precision, a multi-objective search (NSGA-II) of "
          + "4- or 8-bit weights per linear layer and 8-, 6- or 4-bit activations per block against model size, "
          + "budgeted by --max-bytes; or, without calibration images, w8-dynamic (int8 weights per output channel, "
          + "activations quantized at run time, as ONNX Runtime's quantize_dynamic) or fp16 (float16 weights and "
          + "compute behind float32 inputs and outputs, for GPU and NPU providers) (default: ${DEFAULT-VALUE}).")
  String scheme;

  @Option(names = "--method", defaultValue = "mse", paramLabel = "M",
      description = "Scale initialisation: minmax, percentile or mse (default: ${DEFAULT-VALUE}).")
  String method;

  /** The scheme named; an unknown name is a user error. */
  Scheme scheme() throws VitqException {
    return Names.parse(() -> Scheme.ofCliName(scheme));
  }

  /** The method named; an unknown name is a user error. */
  Method method() throws VitqException {
    return Names.parse(() -> Method.ofCliName(method));
  }
}
