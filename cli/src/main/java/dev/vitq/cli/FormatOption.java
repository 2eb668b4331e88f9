package dev.vitq.cli;

import dev.vitq.converter.Format;
import dev.vitq.models.VitqException;
import picocli.CommandLine.Option;

/** {@code --format onnx|ort|both}, shared by {@code quantize} and {@code export}. */
final class FormatOption {
  @Option(names = "--format", defaultValue = "onnx", paramLabel = "F",
      description = "onnx, ort (ONNX Runtime Mobile's format, with required_operators.config for a reduced build) "
          + "or both (default: ${DEFAULT-VALUE}).")
  String format;

  Format get() throws VitqException {
    return Format.parse(format);
  }
}
