package dev.vitq.converter;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.Role;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Turning a plan and its lowered model into what a {@link Target} runs: first the plan is fitted to the target's
 * facts ({@link #plan}), then the lowered model gets the target's deploy passes ({@link #apply}): {@link OrtDeploy}
 * for {@link Target#CPU}, {@link StandardQdq} for the others.
 */
public final class Deploy {
  private Deploy() {}

  /**
   * The plan as {@code target} can run it: a per-axis activation becomes one range over its channels where the
   * target takes only per-tensor activations; a MatMul or Gemm weight's channels share the widest channel's scale
   * where the target takes only per-tensor linear weights. For {@link Target#CPU} and {@link Target#QDQ}, the plan
   * itself.
   *
   * @param model the float model the plan quantizes
   * @throws VitqException if the plan's activations are wider than the target runs
   */
  public static QuantPlan plan(Model model, QuantPlan plan, Target target) throws VitqException {
    Objects.requireNonNull(target, "target");
    GraphIndex index = GraphIndex.of(model.graph());
    List<PlanEntry> changed = new ArrayList<>();
    for (PlanEntry e : plan.entries()) {
      Quantizer q = e.quantizer();
      if (e.role().isActivation() && q.bits() > target.maxActivationBits()) {
        throw new VitqException("--target " + target.cliName() + " runs activations of at most "
            + target.maxActivationBits() + " bits, and the plan quantizes '" + e.tensor() + "' to " + q.bits()
            + "; use a scheme with 8-bit activations, or --target qnn or qdq for 16-bit ones.");
      }
      if (!target.perAxisActivations() && QdqLowering.perAxisActivation(e)) {
        changed.add(e.with(perTensor(q)));
      } else if (!target.perChannelLinearWeights() && e.role() == Role.WEIGHT && q.perChannel()
          && index.consumers(e.tensor()).stream().noneMatch(n -> n.is("Conv"))) {
        float widest = 0;
        for (float s : q.scales()) {
          widest = Math.max(widest, s);
        }
        float[] shared = new float[q.scales().length];
        Arrays.fill(shared, widest);
        changed.add(e.with(q.withScales(shared)));
      }
    }
    return changed.isEmpty() ? plan : plan.withUpdated(changed);
  }

  /** One unsigned range covering every channel's range of a per-axis quantizer. */
  private static Quantizer perTensor(Quantizer q) {
    double lo = Double.POSITIVE_INFINITY;
    double hi = Double.NEGATIVE_INFINITY;
    for (int c = 0; c < q.scales().length; c++) {
      lo = Math.min(lo, q.dequantize(q.qmin(), c));
      hi = Math.max(hi, q.dequantize(q.qmax(), c));
    }
    return Quantizer.asymmetric(q.bits(), lo, hi);
  }

  /**
   * The lowered model (a plan {@link #plan} fitted to {@code target}, lowered by {@link QdqLowering} for deployment)
   * with the target's deploy passes applied.
   *
   * @param vit the model's structure, or null for a model quantized generically
   * @param tokens the tokens its layer norms see (fewer in a split's cloud half)
   * @throws VitqException if the model cannot be written in the target's operators
   */
  public static Model apply(Model lowered, VitStructure vit, long tokens, Target target) throws VitqException {
    if (target.contribKernels()) {
      return OrtDeploy.apply(lowered, vit, tokens);
    }
    return StandardQdq.apply(lowered, target);
  }
}
