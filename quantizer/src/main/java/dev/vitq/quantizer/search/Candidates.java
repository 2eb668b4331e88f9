package dev.vitq.quantizer.search;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QuantPlan;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The candidates of one block visit, scored: each gene vector becomes a plan, its scales are fed to the visit's
 * ONNX Runtime session, and the objective compares the outputs with the float model's. Remembers every loss it
 * computed and the best candidate seen.
 */
final class Candidates {
  private final QuantPlan plan;
  private final List<PlanEntry> tuned;
  /** Genes per tuned entry. */
  private final int[] widths;
  private final int genes;
  private final Map<String, HostTensor> feed;
  private final InferenceSession session;
  private final Targets targets;
  /** The tensor the loss reads. */
  private final String target;
  private final SearchSettings settings;
  /** Images per ONNX Runtime run. */
  private final int perRun;
  private final Map<List<Double>, Double> memo = new HashMap<>();
  private int evaluations;
  private double bestLoss = Double.POSITIVE_INFINITY;
  private double[] best;

  Candidates(QuantPlan plan, List<PlanEntry> tuned, int[] widths, Map<String, HostTensor> feed,
      InferenceSession session, Targets targets, String target, SearchSettings settings, int perRun) {
    this.plan = plan;
    this.tuned = tuned;
    this.widths = widths;
    this.genes = Arrays.stream(widths).sum();
    this.feed = feed;
    this.session = session;
    this.targets = targets;
    this.target = target;
    this.settings = settings;
    this.perRun = perRun;
  }

  /** Genes of one candidate. */
  int genes() {
    return genes;
  }

  /** Candidates run through ONNX Runtime so far (remembered ones are not run again). */
  int evaluations() {
    return evaluations;
  }

  /** The lowest loss seen, or infinity before any. */
  double bestLoss() {
    return bestLoss;
  }

  /** The genes of the first candidate that reached {@link #bestLoss}, or null before any. */
  double[] best() {
    return best;
  }

  /** Each image's loss with the tuned scales multiplied by {@code exp(logFactors)}. */
  double[] perImage(double[] logFactors) throws VitqException {
    QuantPlan candidate = ScaleGenes.apply(plan, tuned, widths, logFactors);
    float[] out = ChunkedRuns.runChunked(session, feed, ScaleGenes.scales(candidate, session.inputNames()), target,
        targets.images().count(), perRun).floats();
    evaluations++;
    return settings.objective().perImage(out, targets.reference(), targets.images().count(),
        settings.temperature());
  }

  /** The loss with the tuned scales multiplied by {@code exp(logFactors)}. */
  double loss(double[] logFactors) throws VitqException {
    List<Double> key = Arrays.stream(logFactors).boxed().toList();
    Double known = memo.get(key);
    if (known != null) {
      return known;
    }
    double loss = mean(perImage(logFactors));
    memo.put(key, loss);
    // Strictly lower only: the first of equal candidates wins, so the result does not depend on ties.
    if (loss < bestLoss) {
      bestLoss = loss;
      best = logFactors.clone();
    }
    return loss;
  }

  static double mean(double[] v) {
    double sum = 0;
    for (double x : v) {
      sum += x;
    }
    return sum / v.length;
  }
}
