package dev.vitq.quantizer;

import java.util.Objects;

/**
 * A tensor a scheme quantizes, before calibration has chosen its scales.
 *
 * @param tensor the value or initializer name
 * @param role what it is
 * @param block the block it belongs to: -1 for the embedding, the depth for the final norm and head
 * @param bits the quantizer's bits
 * @param axis the weight's output-channel axis, or -1 for activations
 */
public record QuantSite(String tensor, Role role, int block, int bits, int axis) {
  public QuantSite {
    Objects.requireNonNull(tensor, "tensor");
    Objects.requireNonNull(role, "role");
  }
}
