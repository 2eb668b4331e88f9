package dev.vitq.quantizer.search;

import java.util.Locale;

/**
 * How the Evol-Q search runs. Start from {@link #defaults()} and change what differs.
 *
 * @param population candidates per generation
 * @param generations generations per block visit
 * @param passes visits of every block
 * @param order the order blocks are visited in within a pass
 * @param batchSize calibration images the loss is measured on (the positive and its negatives)
 * @param validation further calibration images a block's new scales must also lower the loss on (0: no check)
 * @param heldOut further calibration images, never searched or checked on, for the agreement before and after
 * @param temperature InfoNCE temperature
 * @param range largest perturbation of a scale, as a natural-log factor (0.1: within about -10% and +10.5%)
 * @param objective what the search minimises
 * @param strategy how candidates are proposed
 * @param genes what one gene scales: a whole quantizer, or each output channel of a weight
 * @param inputs what the search and validation images are: calibration images as they are, or blends of two
 * @param seed seed of the image sample and every random choice of the search
 */
public record SearchSettings(int population, int generations, int passes, BlockOrder order, int batchSize,
    int validation, int heldOut, double temperature, double range, Objective objective, Strategy strategy, Genes genes,
    Inputs inputs, long seed) {

  /** The order blocks are visited in. */
  public enum BlockOrder {
    /** First block to last. */
    FORWARD,
    /** Last block to first. */
    REVERSE,
    /** A new seeded shuffle every pass. */
    RANDOM;

    public String cliName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** How candidates are proposed. */
  public enum Strategy {
    /** Jenetics' genetic algorithm: selection, Gaussian mutation and mean crossover. */
    EVOLUTION,
    /** Independent uniform samples, as many as evolution evaluates at most: the baseline evolution must beat. */
    RANDOM;

    public String cliName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** What one gene scales. */
  public enum Genes {
    /** All the scales of one quantizer, by one factor. */
    TENSOR,
    /**
     * Each output channel's scale of the block's weights by its own factor (as Evol-Q's authors search), and each
     * activation quantizer by one.
     */
    CHANNEL;

    public String cliName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** What the loss and the validation check are measured on. */
  public enum Inputs {
    /** The calibration images as they are. */
    CALIBRATION,
    /**
     * Each calibration image blended with another (weights between 0.3 and 0.7). Calibration images are often the
     * model's training images, which it classifies with a wide margin, so quantization rarely changes their class and a
     * loss on them barely sees what changes unseen images' classes; a blend of two sits between classes, where it
     * does.
     */
    BLENDS;

    public String cliName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public SearchSettings {
    // State files written before genes and inputs were settings have neither: they searched whole quantizers on the
    // calibration images.
    genes = genes == null ? Genes.TENSOR : genes;
    inputs = inputs == null ? Inputs.CALIBRATION : inputs;
    if (population < 2 || generations < 1 || passes < 1) {
      throw new IllegalArgumentException("The search needs a population of at least 2 and at least one generation "
          + "and pass, got " + population + ", " + generations + " and " + passes + ".");
    }
    if (batchSize < 2) {
      throw new IllegalArgumentException("The search batch needs at least 2 images (one positive, one negative), got "
          + batchSize + ".");
    }
    if (heldOut < 0 || validation < 0) {
      throw new IllegalArgumentException("Validation and held-out images cannot be negative, got " + validation
          + " and " + heldOut + ".");
    }
    if (!(temperature > 0) || !(range > 0) || range > 1) {
      throw new IllegalArgumentException("Temperature must be positive and the range in (0, 1], got " + temperature
          + " and " + range + ".");
    }
    if (order == null || objective == null || strategy == null) {
      throw new IllegalArgumentException("Order, objective and strategy are required.");
    }
  }

  /** The defaults, chosen by measurement on the shared model (BENCHMARKS.md). */
  public static SearchSettings defaults() {
    return new SearchSettings(10, 4, 1, BlockOrder.FORWARD, 128, 256, 256, 0.1, 0.1, Objective.INFONCE,
        Strategy.EVOLUTION, Genes.TENSOR, Inputs.BLENDS, 0);
  }

  public SearchSettings withPopulation(int n) {
    return new SearchSettings(n, generations, passes, order, batchSize, validation,
        heldOut, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withGenerations(int n) {
    return new SearchSettings(population, n, passes, order, batchSize, validation,
        heldOut, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withPasses(int n) {
    return new SearchSettings(population, generations, n, order, batchSize, validation,
        heldOut, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withOrder(BlockOrder o) {
    return new SearchSettings(population, generations, passes, o, batchSize, validation,
        heldOut, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withBatchSize(int n) {
    return new SearchSettings(population, generations, passes, order, n, validation,
        heldOut, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withValidation(int n) {
    return new SearchSettings(population, generations, passes, order, batchSize, n,
        heldOut, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withHeldOut(int n) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        n, temperature, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withTemperature(double t) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, t, range, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withRange(double r) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, temperature, r, objective, strategy, genes, inputs, seed);
  }

  public SearchSettings withObjective(Objective o) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, temperature, range, o, strategy, genes, inputs, seed);
  }

  public SearchSettings withStrategy(Strategy s) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, temperature, range, objective, s, genes, inputs, seed);
  }

  public SearchSettings withGenes(Genes g) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, temperature, range, objective, strategy, g, inputs, seed);
  }

  public SearchSettings withInputs(Inputs i) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, temperature, range, objective, strategy, genes, i, seed);
  }

  public SearchSettings withSeed(long s) {
    return new SearchSettings(population, generations, passes, order, batchSize, validation,
        heldOut, temperature, range, objective, strategy, genes, inputs, s);
  }

  /**
   * The most candidates one block visit evaluates: the whole first generation, then the offspring (Jenetics' default
   * 60% of the population) of each later one. Random search gets exactly this many.
   */
  public int evaluationsPerBlock() {
    return population + (generations - 1) * (int) Math.round(0.6 * population);
  }
}
