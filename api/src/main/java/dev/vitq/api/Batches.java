package dev.vitq.api;

import dev.vitq.models.Model;
import dev.vitq.models.VitqException;

/** How many images a job runs at once through a model, given what its input allows. */
final class Batches {
  private Batches() {}

  /** The batch a model's image input is fixed to, or 0 when it is dynamic. */
  static long fixedBatch(Model m) {
    var shape = m.graph().inputs().get(0).type() == null ? null : m.graph().inputs().get(0).type().shape();
    return shape != null && !shape.isEmpty() && shape.get(0).isFixed() ? shape.get(0).size() : 0;
  }

  /**
   * Images per run for a model: {@code requested} when its batch is dynamic, one at a time when it is fixed at 1 (as
   * an export without dynamic axes is).
   *
   * @throws VitqException when the batch is fixed at more than one image
   */
  static int runBatch(Model m, int requested) throws VitqException {
    long fixed = fixedBatch(m);
    if (fixed > 1) {
      throw new VitqException("The model's input has a fixed batch of " + fixed + "; vitq runs models whose batch is "
          + "dynamic or 1, so export it with a dynamic batch.");
    }
    return fixed == 1 ? 1 : requested;
  }
}
