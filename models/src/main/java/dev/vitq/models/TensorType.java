package dev.vitq.models;

import java.util.List;

/**
 * The type of a tensor value: element type and, when known, shape.
 *
 * @param dtype the element type
 * @param shape the dimensions, or null when even the rank is unknown
 */
public record TensorType(DType dtype, List<Dim> shape) {
  public TensorType {
    java.util.Objects.requireNonNull(dtype, "dtype");
    shape = shape == null ? null : List.copyOf(shape);
  }

  /** A tensor type with fixed and symbolic dimensions: a {@code Long} is fixed, a {@code String} symbolic. */
  public static TensorType of(DType dtype, Object... dims) {
    return new TensorType(
        dtype,
        java.util.Arrays.stream(dims)
            .map(
                d ->
                    switch (d) {
                      case Number n -> Dim.of(n.longValue());
                      case String s -> Dim.symbol(s);
                      default -> throw new IllegalArgumentException("Not a dimension: " + d);
                    })
            .toList());
  }

  public int rank() {
    if (shape == null) {
      throw new IllegalStateException("Rank of " + this + " is unknown");
    }
    return shape.size();
  }

  @Override
  public String toString() {
    return dtype.name().toLowerCase(java.util.Locale.ROOT) + (shape == null ? "[?]" : shape.toString());
  }
}
