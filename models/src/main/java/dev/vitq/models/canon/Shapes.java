package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import java.util.Map;
import java.util.Optional;

/**
 * The element types and shapes of a graph's values as shape inference finds them, for readers outside this package
 * (recognition, calibration budgets).
 *
 * {@snippet lang="java" :
 * Shapes shapes = Shapes.of(canonical.graph());
 * long headDim = shapes.dims(query).map(d -> d[d.length - 1]).orElse(-1L);
 * }
 */
public final class Shapes {
  private final Map<String, Facts> facts;

  private Shapes(Map<String, Facts> facts) {
    this.facts = facts;
  }

  /** Infers the shapes of a graph's values. */
  public static Shapes of(Graph graph) {
    return new Shapes(ShapeInference.infer(graph));
  }

  /** The value's dimensions, -1 for each one that is symbolic or unknown; empty when even the rank is unknown. */
  public Optional<long[]> dims(String value) {
    Facts f = facts.get(value);
    if (f == null || !f.hasRank()) {
      return Optional.empty();
    }
    return Optional.of(f.shape().stream().mapToLong(d -> d.isKnown() ? d.value() : -1).toArray());
  }

  /** The value's element type, if known. */
  public Optional<DType> dtype(String value) {
    Facts f = facts.get(value);
    return f == null ? Optional.empty() : Optional.ofNullable(f.dtype());
  }

  /** The integer elements of a small constant value (indices, shape arithmetic), when inference knows them all. */
  public Optional<long[]> longs(String value) {
    Facts f = facts.get(value);
    if (f == null || f.ints() == null) {
      return Optional.empty();
    }
    long[] out = new long[f.ints().length];
    for (int i = 0; i < out.length; i++) {
      if (!f.ints()[i].isKnown()) {
        return Optional.empty();
      }
      out[i] = f.ints()[i].value();
    }
    return Optional.of(out);
  }
}
