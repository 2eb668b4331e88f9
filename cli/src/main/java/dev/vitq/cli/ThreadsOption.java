package dev.vitq.cli;

import dev.vitq.models.VitqException;
import picocli.CommandLine.Option;

/** {@code --threads N}, shared by the commands that run ONNX Runtime. */
final class ThreadsOption {
  @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
      description = "ONNX Runtime threads (default: ONNX Runtime's choice).")
  int threads;

  /**
   * The thread count, 0 meaning ONNX Runtime's choice.
   *
   * @throws VitqException if it is negative
   */
  int get() throws VitqException {
    if (threads < 0) {
      throw new VitqException("--threads must be 0 (ONNX Runtime's choice) or positive, got " + threads + ".");
    }
    return threads;
  }
}
