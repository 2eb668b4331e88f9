package dev.vitq.quantizer.search;

import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.MixedPrecision.Genes;
import dev.vitq.quantizer.QuantPlan;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * Quantization under an accuracy budget (NNCF's quantization with accuracy control, on vitq's mixed-precision space):
 * from a point of the space, the part that loses most (the lowest SQNR of the model's output with only that part
 * quantized: the report's sensitivity) is raised one rung, its activations to 8 bits, then its weights to 8 bits, then
 * float, and the whole model is measured again, until the drop is within the budget. Each step costs one measure of
 * the whole model and one sensitivity of the part raised.
 *
 * <p>The search never leaves every part in float (that is the float model, not a quantization), and with a byte
 * budget a rung that would not fit ends that part's raising. When no rung is left and the drop is still over the
 * budget, the result says it was not met.
 */
public final class BudgetSearch {
  private BudgetSearch() {}

  /** What a part can be raised to, cheapest first. */
  public enum Rung {
    /** The group's activations to 8 bits: costs no weight bytes. */
    ACTIVATIONS_8("activations to 8 bits"),
    /** The block's linear weights to 8 bits: half a byte more per weight. */
    WEIGHTS_8("weights to 8 bits"),
    /** Every tensor of the part in float. */
    FLOAT("float");

    private final String description;

    Rung(String description) {
      this.description = description;
    }

    /** How the report says it. */
    public String description() {
      return description;
    }
  }

  /** The whole model's drop from float and its exact size, for a plan. */
  @FunctionalInterface
  public interface Measure {
    /**
     * Ships the plan and measures it; a plan over {@code maxBytes} (when positive) may be left unmeasured, its drop
     * NaN.
     *
     * @throws VitqException if ONNX Runtime or the images fail
     */
    Measured measure(QuantPlan plan, long maxBytes) throws VitqException;
  }

  /**
   * A measured plan.
   *
   * @param bytes the shipped model's size
   * @param drop how much worse than the float model it is (NaN when not measured)
   * @param score its measure itself (top-1, agreement or mean cosine; NaN when not measured)
   */
  public record Measured(long bytes, double drop, double score) {}

  /** A part's loss when it alone is quantized. */
  @FunctionalInterface
  public interface PartNoise {
    /**
     * The SQNR in dB of the model's output with only {@code partOnly} quantized.
     *
     * @throws VitqException if ONNX Runtime fails
     */
    double sqnrDb(QuantPlan partOnly) throws VitqException;
  }

  /**
   * One rung climbed.
   *
   * @param part "embedding", "block N" (1-based) or "head"
   * @param rung what it was raised to
   * @param sqnrDb the part's SQNR alone before the raise, which chose it
   * @param bytes the whole model's size after
   * @param score the whole model's measure after
   * @param drop the whole model's drop after
   */
  public record Step(String part, Rung rung, double sqnrDb, long bytes, double score, double drop) {}

  /**
   * Where the search ended.
   *
   * @param plan the plan of the last point measured within the budgets
   * @param genes its bits
   * @param floatGroups its activation groups in float
   * @param start the starting point's measure
   * @param end the final point's measure
   * @param steps the rungs climbed, in order
   * @param rejected rungs measured over the byte budget and not climbed
   * @param met whether the final drop is within the budget
   */
  public record Result(QuantPlan plan, Genes genes, Set<Integer> floatGroups, Measured start, Measured end,
      List<Step> steps, int rejected, boolean met) {
    public Result {
      floatGroups = Collections.unmodifiableSet(new TreeSet<>(floatGroups));
      steps = List.copyOf(steps);
    }

    /** Measures taken of the whole model. */
    public int evaluations() {
      return 1 + steps.size() + rejected;
    }
  }

  /** The name of an activation group: "embedding", "block N" (1-based) or "head". */
  public static String partName(MixedPrecision space, int group) {
    return group == 0 ? "embedding" : group == space.depth() + 1 ? "head" : "block " + group;
  }

  /**
   * Raises parts of {@code start} until the drop is at most {@code maxDrop}.
   *
   * @param maxBytes the largest shipped size a raise may reach (0: any)
   * @throws VitqException if a measure fails
   */
  public static Result search(MixedPrecision space, Genes start, double maxDrop, long maxBytes, PartNoise noise,
      Measure measure, Progress progress) throws VitqException {
    int groups = space.activationGroups();
    Genes genes = start;
    Set<Integer> floats = new TreeSet<>();
    Measured first = measure.measure(space.plan(genes).withSearch("budget"), 0);
    Measured current = first;
    List<Step> steps = new ArrayList<>();
    int rejected = 0;
    if (current.drop() <= maxDrop) {
      return new Result(space.plan(genes).withSearch("budget"), genes, floats, first, current, steps, 0, true);
    }
    double[] sqnr = new double[groups];
    boolean[] done = new boolean[groups];
    int rungs = 0;
    int quantized = 0;
    for (int g = 0; g < groups; g++) {
      QuantPlan part = space.part(genes, g);
      // A group with nothing quantized (a head the scheme leaves in float) has nothing to raise.
      done[g] = part.entries().isEmpty();
      if (!done[g]) {
        sqnr[g] = noise.sqnrDb(part);
        rungs += rungsLeft(space, genes, g);
        quantized++;
      }
    }
    try (Progress.Task task = progress.start("budget", rungs)) {
      task.status(String.format(Locale.ROOT, "drop %.4f", current.drop()));
      while (current.drop() > maxDrop) {
        int g = worst(sqnr, done, floats);
        if (g < 0) {
          break;
        }
        Rung rung = next(space, genes, g);
        if (rung == Rung.FLOAT && floats.size() == quantized - 1) {
          // Every other part is float already: the last one in float would ship the float model.
          done[g] = true;
          continue;
        }
        Genes nextGenes = switch (rung) {
          case ACTIVATIONS_8 -> space.withActivationBits(genes, g, 8);
          case WEIGHTS_8 -> space.withWeightBits(genes, g, 8);
          case FLOAT -> genes;
        };
        Set<Integer> nextFloats = new TreeSet<>(floats);
        if (rung == Rung.FLOAT) {
          nextFloats.add(g);
        }
        Measured m = measure.measure(space.plan(nextGenes, nextFloats).withSearch("budget"), maxBytes);
        task.advance(1);
        if (maxBytes > 0 && m.bytes() > maxBytes) {
          // A wider rung costs at least as many bytes: this part cannot be raised within the byte budget.
          rejected++;
          done[g] = true;
          continue;
        }
        steps.add(new Step(partName(space, g), rung, sqnr[g], m.bytes(), m.score(), m.drop()));
        genes = nextGenes;
        floats = nextFloats;
        current = m;
        task.status(String.format(Locale.ROOT, "drop %.4f after %s %s", m.drop(), partName(space, g),
            rung.description()));
        sqnr[g] = rung == Rung.FLOAT ? Double.POSITIVE_INFINITY : noise.sqnrDb(space.part(genes, g));
      }
    }
    return new Result(space.plan(genes, floats).withSearch("budget"), genes, floats, first, current, steps, rejected,
        current.drop() <= maxDrop);
  }

  /** The part with the lowest SQNR that can still be raised; the first on ties; -1 when none can. */
  private static int worst(double[] sqnr, boolean[] done, Set<Integer> floats) {
    int best = -1;
    for (int g = 0; g < sqnr.length; g++) {
      if (!done[g] && !floats.contains(g) && (best < 0 || sqnr[g] < sqnr[best])) {
        best = g;
      }
    }
    return best;
  }

  /** The next rung of a part that is not float. */
  static Rung next(MixedPrecision space, Genes genes, int group) {
    if (genes.activationBits()[group] < 8) {
      return Rung.ACTIVATIONS_8;
    }
    return space.weightBits(genes, group) < 8 ? Rung.WEIGHTS_8 : Rung.FLOAT;
  }

  private static int rungsLeft(MixedPrecision space, Genes genes, int group) {
    return (genes.activationBits()[group] < 8 ? 1 : 0) + (space.weightBits(genes, group) < 8 ? 1 : 0) + 1;
  }
}
