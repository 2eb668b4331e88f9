package dev.vitq.cli;

import dev.vitq.calibration.Progress;
import picocli.CommandLine.Option;

/** {@code --json} and {@code --quiet}, shared by the commands that show progress while they work. */
final class OutputOptions {
  @Option(names = "--json", description = "Print JSON instead of text.")
  boolean json;

  @Option(names = {"-q", "--quiet"}, description = "No progress bars.")
  boolean quiet;

  /** Progress bars on an interactive terminal, unless quiet or printing JSON (which must stay parseable). */
  Progress progress() {
    return ConsoleProgress.forTerminal(quiet || json);
  }
}
