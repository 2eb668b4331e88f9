package dev.vitq.quantizer.search;

import dev.vitq.calibration.HostTensor;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.Role;
import dev.vitq.quantizer.ScaleInit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a candidate's genes are: which quantizers the search scales, how many genes each gets, the plan a gene
 * vector stands for, and the scale inputs that feed that plan to a simulated model's session.
 */
final class ScaleGenes {
  private ScaleGenes() {}

  /** Genes per tuned entry: one, or one per output channel of a weight when genes are per channel. */
  static int[] geneWidths(List<PlanEntry> tuned, SearchSettings.Genes genes) {
    int[] widths = new int[tuned.size()];
    for (int j = 0; j < widths.length; j++) {
      PlanEntry e = tuned.get(j);
      widths[j] = genes == SearchSettings.Genes.CHANNEL && e.role() == Role.WEIGHT ? e.quantizer().scales().length : 1;
    }
    return widths;
  }

  /**
   * The plan with each tuned entry's scales multiplied by {@code exp} of its genes: {@code widths[j]} genes for entry
   * {@code j}, in order, one factor for all its scales or one per scale (a weight's output channels). Weight scales
   * stay on the float16 grid the deployed model stores them in; layer-norm inputs keep their power-of-two channel
   * factors exact.
   */
  static QuantPlan apply(QuantPlan plan, List<PlanEntry> tuned, int[] widths, double[] genes) {
    List<PlanEntry> updated = new ArrayList<>(tuned.size());
    int at = 0;
    for (int j = 0; j < tuned.size(); j++) {
      PlanEntry e = tuned.get(j);
      int w = widths[j];
      int first = at;
      at += w;
      if (Arrays.stream(genes, first, first + w).allMatch(g -> g == 0)) {
        continue;
      }
      float[] scales = e.quantizer().scales();
      float[] next = new float[scales.length];
      float[] input = QdqLowering.scaleInput(e);
      if (e.role() == Role.WEIGHT) {
        for (int c = 0; c < scales.length; c++) {
          next[c] = ScaleInit.toHalfGrid((float) (scales[c] * Math.exp(genes[first + (w == 1 ? 0 : c)])));
        }
      } else if (input.length == 1 && scales.length > 1) {
        float base = (float) (input[0] * Math.exp(genes[first]));
        for (int c = 0; c < scales.length; c++) {
          next[c] = base * (scales[c] / input[0]);
        }
      } else {
        double f = Math.exp(genes[first]);
        for (int c = 0; c < scales.length; c++) {
          next[c] = (float) (scales[c] * f);
        }
      }
      updated.add(e.with(e.quantizer().withScales(next)));
    }
    return updated.isEmpty() ? plan : plan.withUpdated(updated);
  }

  /** Whether the search scales a quantizer: uniform and twin uniform ones have scales; logarithmic ones do not. */
  static boolean searchable(Quantizer q) {
    return q.kind() == Quantizer.Kind.UNIFORM || q.kind() == Quantizer.Kind.TWIN;
  }

  /** The scale inputs of {@code inputNames} for a plan. */
  static Map<String, HostTensor> scales(QuantPlan plan, List<String> inputNames) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (PlanEntry e : plan.entries()) {
      String name = QdqLowering.SCALE_INPUT_PREFIX + e.tensor();
      if (searchable(e.quantizer()) && inputNames.contains(name)) {
        float[] s = QdqLowering.scaleInput(e);
        long[] shape = e.role() == Role.WEIGHT || s.length > 1 ? new long[] {s.length} : new long[0];
        out.put(name, HostTensor.ofFloats(shape, s));
      }
    }
    return out;
  }
}
