package dev.vitq.quantizer;

import java.util.Objects;

/**
 * One quantized tensor of a plan.
 *
 * @param tensor the value or initializer name
 * @param role what it is
 * @param block its block (-1 embedding, depth for the head)
 * @param quantizer how it is quantized
 */
public record PlanEntry(String tensor, Role role, int block, Quantizer quantizer) {
  public PlanEntry {
    Objects.requireNonNull(tensor, "tensor");
    Objects.requireNonNull(role, "role");
    Objects.requireNonNull(quantizer, "quantizer");
  }

  /** This entry with another quantizer. */
  public PlanEntry with(Quantizer q) {
    return new PlanEntry(tensor, role, block, q);
  }
}
