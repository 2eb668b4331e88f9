package dev.vitq.cli;

import dev.vitq.api.PreprocessFlags;
import picocli.CommandLine.Option;

/** Preprocessing flags shared by the commands that read images; each overrides the model's metadata. */
final class PreprocessOptions {
  @Option(names = "--size", paramLabel = "N", description = "Model input size (default: from the model).")
  Integer size;

  @Option(names = "--mean", split = ",", paramLabel = "R,G,B",
      description = "Per-channel mean after scaling pixels to [0, 1] (default: from the model).")
  double[] mean;

  @Option(names = "--std", split = ",", paramLabel = "R,G,B",
      description = "Per-channel standard deviation (default: from the model).")
  double[] std;

  @Option(names = "--resize", paramLabel = "N",
      description = "Resize the shorter image side to N, then centre-crop to the input size (default: images must "
          + "already have the input size).")
  Integer resize;

  PreprocessFlags flags() {
    return new PreprocessFlags(size, mean, std, resize);
  }
}
