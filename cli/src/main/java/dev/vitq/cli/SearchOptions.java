package dev.vitq.cli;

import dev.vitq.models.VitqException;
import dev.vitq.quantizer.search.Objective;
import dev.vitq.quantizer.search.SearchSettings;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Option;

/** The options of the evolq search; unset ones keep {@link SearchSettings#defaults()}. */
final class SearchOptions {
  private static final SearchSettings D = SearchSettings.defaults();

  @Option(names = "--population", paramLabel = "N",
      description = "evolq: candidates per generation (default: 10).")
  Integer population;

  @Option(names = "--generations", paramLabel = "N", description = "evolq: generations per block (default: 4).")
  Integer generations;

  @Option(names = "--passes", paramLabel = "N", description = "evolq: visits of every block (default: 1).")
  Integer passes;

  @Option(names = "--block-order", paramLabel = "O",
      description = "evolq: forward, reverse or random (default: forward).")
  String order;

  @Option(names = "--search-batch", paramLabel = "N",
      description = "evolq: calibration images the loss is measured on (default: 128).")
  Integer batch;

  @Option(names = "--validation", paramLabel = "N",
      description = "evolq: further calibration images a block's new scales must also lower the loss on; 0 turns "
          + "the check off (default: 256).")
  Integer validation;

  @Option(names = "--held-out", paramLabel = "N",
      description = "evolq: further calibration images for the agreement before and after (default: 256).")
  Integer heldOut;

  @Option(names = "--temperature", paramLabel = "T",
      description = "evolq and --scheme auto: InfoNCE temperature (default: 0.1).")
  Double temperature;

  @Option(names = "--range", paramLabel = "R",
      description = "evolq: largest scale perturbation, as a natural-log factor (default: 0.1).")
  Double range;

  @Option(names = "--objective", paramLabel = "L",
      description = "evolq and --scheme auto: the loss against the float model's outputs, infonce, mse or kl; "
          + "evolq also infonce-features (InfoNCE on the classifier's input features) (default: infonce).")
  String objective;

  @Option(names = "--strategy", paramLabel = "S",
      description = "evolq: evolution, or random at the same budget (default: evolution).")
  String strategy;

  @Option(names = "--genes", paramLabel = "G",
      description = "evolq: what one gene scales, tensor (a whole quantizer) or channel (each output channel of the "
          + "block's weights, as Evol-Q's authors search) (default: tensor).")
  String genes;

  @Option(names = "--search-inputs", paramLabel = "I",
      description = "evolq: what the loss and its validation check are measured on, blends (each calibration image "
          + "blended with another, so between classes, where quantization changes them) or calibration (the images "
          + "as they are) (default: blends).")
  String inputs;

  @Option(names = "--resume",
      description = "evolq: continue an interrupted search from OUT.onnx.evolq-state.json, saved after every block.")
  boolean resume;

  @Option(names = "--report", paramLabel = "DIR",
      description = "Write report.html (settings, per-block sensitivity, the search's convergence) into DIR; with "
          + "evolq also report.json and report.png.")
  Path report;

  /**
   * The settings these options give.
   *
   * @throws VitqException if an option's value is not usable
   */
  SearchSettings settings() throws VitqException {
    try {
      SearchSettings s = D;
      if (population != null) {
        s = s.withPopulation(population);
      }
      if (generations != null) {
        s = s.withGenerations(generations);
      }
      if (passes != null) {
        s = s.withPasses(passes);
      }
      if (order != null) {
        s = s.withOrder(SearchSettings.BlockOrder.valueOf(name("--block-order", order,
            "forward, reverse or random")));
      }
      if (batch != null) {
        s = s.withBatchSize(batch);
      }
      if (validation != null) {
        s = s.withValidation(validation);
      }
      if (heldOut != null) {
        s = s.withHeldOut(heldOut);
      }
      if (temperature != null) {
        s = s.withTemperature(temperature);
      }
      if (range != null) {
        s = s.withRange(range);
      }
      if (objective != null) {
        s = s.withObjective(Objective.valueOf(name("--objective", objective, "infonce, mse, kl or infonce-features")));
      }
      if (strategy != null) {
        s = s.withStrategy(SearchSettings.Strategy.valueOf(name("--strategy", strategy, "evolution or random")));
      }
      if (genes != null) {
        s = s.withGenes(SearchSettings.Genes.valueOf(name("--genes", genes, "tensor or channel")));
      }
      if (inputs != null) {
        s = s.withInputs(SearchSettings.Inputs.valueOf(name("--search-inputs", inputs, "blends or calibration")));
      }
      return s;
    } catch (IllegalArgumentException e) {
      throw new VitqException(e.getMessage());
    }
  }

  private static String name(String option, String value, String expected) {
    String n = value.toUpperCase(Locale.ROOT);
    for (String ok : expected.replace(" or ", ", ").split(", ")) {
      if (ok.toUpperCase(Locale.ROOT).equals(n)) {
        return n.replace('-', '_');
      }
    }
    throw new IllegalArgumentException(option + " must be " + expected + ", got '" + value + "'.");
  }
}
