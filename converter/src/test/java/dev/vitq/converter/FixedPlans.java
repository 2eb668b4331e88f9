package dev.vitq.converter;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Tensor;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.QuantSite;
import dev.vitq.quantizer.QuantSites;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.Role;
import dev.vitq.quantizer.ScaleInit;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.Technique;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/** Plans for tests that lower a model without calibrating it (shared with the split module's tests). */
public final class FixedPlans {
  private FixedPlans() {}

  /**
   * A plan with fixed activation ranges and MSE weight scales: enough to lower, no calibration needed. Its layer-norm
   * inputs are quantized, whatever the scheme's default, so that every split has a boundary quantizer.
   */
  public static QuantPlan plan(Model model, VitStructure vit, Scheme scheme) {
    GraphIndex idx = GraphIndex.of(model.graph());
    List<PlanEntry> entries = new ArrayList<>();
    Set<Technique> techniques = EnumSet.copyOf(Technique.defaults(scheme));
    techniques.remove(Technique.FLOAT_NORM_INPUT);
    for (QuantSite s : QuantSites.of(vit, scheme, techniques)) {
      Quantizer q;
      if (s.role() == Role.WEIGHT) {
        Tensor w = idx.initializer(s.tensor()).orElseThrow();
        q = ScaleInit.weight(w.floats(), w.dims().stream().mapToLong(Long::longValue).toArray(), s.axis(), s.bits(),
            Method.MSE);
      } else if (s.role() == Role.SOFTMAX_OUTPUT) {
        q = Quantizer.asymmetric(s.bits(), 0, 1);
      } else {
        q = Quantizer.asymmetric(s.bits(), -4, 4);
      }
      entries.add(new PlanEntry(s.tensor(), s.role(), s.block(), q));
    }
    return new QuantPlan(QuantPlan.FORMAT, "test", scheme, Method.MSE, "none", 0, 0, Set.of(), entries);
  }
}
