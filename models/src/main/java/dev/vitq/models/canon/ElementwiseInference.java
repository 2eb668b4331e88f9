package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Node;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Element-by-element operators and broadcasting: arithmetic, comparisons, unary functions, Cast, Where, Expand
 * and Tile. Small tensors are evaluated (by {@link Evaluate}); larger ones get their broadcast shape.
 */
final class ElementwiseInference {
  private ElementwiseInference() {}

  /** A unary operator's output type; QuantizeLinear's follows its zero point, which is not tracked here. */
  static DType outType(Node n, Facts x) {
    if (n.is("QuantizeLinear")) {
      return null;
    }
    if (n.is("DequantizeLinear")) {
      return DType.FLOAT;
    }
    return x.dtype();
  }

  static Facts cast(Facts x, DType to) {
    if (to == null) {
      return Facts.UNKNOWN;
    }
    SymInt[] ints = null;
    double[] reals = null;
    if (Facts.isInteger(to)) {
      if (x.ints() != null) {
        ints = to == DType.BOOL ? map(x.ints(), v -> v.isKnown() ? SymInt.of(v.value() != 0 ? 1 : 0) : SymInt.UNKNOWN)
            : x.ints();
      } else if (x.reals() != null) {
        ints = new SymInt[x.reals().length];
        for (int i = 0; i < ints.length; i++) {
          double v = x.reals()[i];
          ints[i] = Double.isFinite(v) ? SymInt.of(to == DType.BOOL ? (v != 0 ? 1 : 0) : (long) v) : SymInt.UNKNOWN;
        }
      }
    } else if (Facts.isReal(to)) {
      if (x.reals() != null) {
        reals = ShapeMath.round(x.reals(), to);
      } else if (x.ints() != null && x.fullyKnown()) {
        reals = new double[x.ints().length];
        for (int i = 0; i < reals.length; i++) {
          reals[i] = x.ints()[i].value();
        }
        reals = ShapeMath.round(reals, to);
      }
    }
    return new Facts(to, x.shape(), ints, reals);
  }

  private static SymInt[] map(SymInt[] in, java.util.function.UnaryOperator<SymInt> fn) {
    SymInt[] out = new SymInt[in.length];
    for (int i = 0; i < in.length; i++) {
      out[i] = fn.apply(in[i]);
    }
    return out;
  }

  static Facts expand(Facts x, Facts target) {
    if (target.ints() == null || !x.hasRank()) {
      return Facts.of(x.dtype(), target.hasRank() && target.knownDims() != null && target.rank() == 1
          ? ShapeMath.unknownDims((int) Math.max(target.knownDims()[0], x.hasRank() ? x.rank() : 0)) : null);
    }
    List<SymInt> shape = ShapeMath.broadcast(List.of(x.shape(), Arrays.asList(target.ints())));
    if (shape == null) {
      return Facts.of(x.dtype(), null);
    }
    return broadcastContent(x, shape);
  }

  /** The facts of {@code x} broadcast to {@code shape}, with content when both are known and small. */
  private static Facts broadcastContent(Facts x, List<SymInt> shape) {
    long count = ShapeMath.knownCount(shape);
    long[] dims = x.knownDims();
    if (!x.hasContent() || dims == null || count < 0 || count > ShapeMath.MAX_CONTENT) {
      return Facts.of(x.dtype(), shape);
    }
    long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
    return ShapeMath.pick(x, shape, broadcastIndex(dims, outDims));
  }

  /** For each element of a tensor of {@code outDims}, the flat position of its source in a tensor of {@code dims}. */
  static int[] broadcastIndex(long[] dims, long[] outDims) {
    int r = outDims.length;
    int off = r - dims.length;
    long[] strides = ShapeMath.strides(dims);
    int count = (int) Arrays.stream(outDims).reduce(1, (a, b) -> a * b);
    int[] from = new int[count];
    for (int i = 0; i < count; i++) {
      long rem = i;
      long src = 0;
      for (int d = r - 1; d >= 0; d--) {
        long k = rem % outDims[d];
        rem /= outDims[d];
        int sd = d - off;
        if (sd >= 0 && dims[sd] != 1) {
          src += k * strides[sd];
        }
      }
      from[i] = (int) src;
    }
    return from;
  }

  static Facts tile(Facts x, long[] repeats) {
    if (!x.hasRank() || repeats == null || repeats.length != x.rank()) {
      return Facts.of(x.dtype(), x.hasRank() ? ShapeMath.unknownDims(x.rank()) : null);
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < repeats.length; d++) {
      shape.add(x.shape().get(d).times(SymInt.of(repeats[d])));
    }
    return Facts.of(x.dtype(), shape);
  }

  static Facts elementwise(Node n, List<Facts> in, DType dtype) {
    List<List<SymInt>> shapes = new ArrayList<>();
    for (Facts f : in) {
      shapes.add(f.shape());
    }
    List<SymInt> shape = ShapeMath.broadcast(shapes);
    if (shape == null) {
      return Facts.of(dtype, null);
    }
    long count = ShapeMath.knownCount(shape);
    if (count < 0 || count > ShapeMath.MAX_CONTENT
        || in.stream().anyMatch(f -> !f.hasContent() || f.knownDims() == null) || dtype == null) {
      return Facts.of(dtype, shape);
    }
    long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
    List<int[]> from = new ArrayList<>();
    for (Facts f : in) {
      from.add(broadcastIndex(f.knownDims(), outDims));
    }
    return Evaluate.elementwise(n, in, from, (int) count, dtype, shape);
  }

  static Facts unary(Node n, Facts x, DType dtype) {
    if (x.hasContent() && dtype != null) {
      Facts r = Evaluate.unary(n, x, dtype);
      if (r != null) {
        return r;
      }
    }
    return Facts.of(dtype, x.shape());
  }
}
