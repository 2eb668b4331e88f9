package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Node;
import java.util.ArrayList;
import java.util.List;

/**
 * Operators that read or rearrange a shape and keep every element: Shape, Size, Unsqueeze, Squeeze, Reshape,
 * Flatten and Transpose.
 */
final class LayoutInference {
  private LayoutInference() {}

  static Facts shapeOf(Node n, Facts x) {
    if (!x.hasRank()) {
      return Facts.of(DType.INT64, null);
    }
    int r = x.rank();
    int start = (int) clampAxis(n.intAttr("start", 0), r);
    int end = (int) clampAxis(n.intAttr("end", r), r);
    List<SymInt> dims = x.shape().subList(start, Math.max(start, end));
    return new Facts(DType.INT64, List.of(SymInt.of(dims.size())), dims.toArray(new SymInt[0]), null);
  }

  private static long clampAxis(long a, int rank) {
    long v = a < 0 ? a + rank : a;
    return Math.max(0, Math.min(rank, v));
  }

  static Facts sizeOf(Facts x) {
    SymInt n = SymInt.of(1);
    if (x.hasRank()) {
      for (SymInt d : x.shape()) {
        n = n.times(d);
      }
    } else {
      n = SymInt.UNKNOWN;
    }
    return new Facts(DType.INT64, List.of(), new SymInt[] {n}, null);
  }

  static Facts unsqueeze(Facts x, long[] axes) {
    if (!x.hasRank() || axes == null) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank() + axes.length;
    boolean[] inserted = new boolean[r];
    for (long a : axes) {
      int ax = (int) (a < 0 ? a + r : a);
      if (ax < 0 || ax >= r) {
        return Facts.of(x.dtype(), null);
      }
      inserted[ax] = true;
    }
    List<SymInt> shape = new ArrayList<>();
    int k = 0;
    for (int d = 0; d < r; d++) {
      shape.add(inserted[d] ? SymInt.of(1) : x.shape().get(k++));
    }
    return ShapeMath.withShape(x, shape);
  }

  static Facts squeeze(Facts x, long[] axes) {
    if (!x.hasRank() || axes == null) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    boolean[] removed = new boolean[r];
    if (axes.length == 0) {
      for (int d = 0; d < r; d++) {
        SymInt s = x.shape().get(d);
        if (!s.isKnown()) {
          return Facts.of(x.dtype(), null);
        }
        removed[d] = s.value() == 1;
      }
    }
    for (long a : axes) {
      removed[(int) (a < 0 ? a + r : a)] = true;
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      if (!removed[d]) {
        shape.add(x.shape().get(d));
      }
    }
    return ShapeMath.withShape(x, shape);
  }

  /** Reshape's output shape; a target entry -1 is solved from the element count, symbolically if need be. */
  static List<SymInt> reshapeTarget(Facts x, SymInt[] target, boolean allowZero) {
    List<SymInt> shape = new ArrayList<>();
    int infer = -1;
    for (int d = 0; d < target.length; d++) {
      SymInt t = target[d];
      if (t.isKnown() && t.value() == 0 && !allowZero) {
        if (!x.hasRank() || d >= x.rank()) {
          return null;
        }
        shape.add(x.shape().get(d));
      } else if (t.isKnown() && t.value() == -1) {
        infer = d;
        shape.add(SymInt.UNKNOWN);
      } else {
        shape.add(t);
      }
    }
    if (infer >= 0) {
      SymInt total = ShapeMath.product(x.shape());
      SymInt others = SymInt.of(1);
      for (int d = 0; d < shape.size(); d++) {
        if (d != infer) {
          others = others.times(shape.get(d));
        }
      }
      shape.set(infer, total.dividedBy(others));
    }
    return shape;
  }

  static Facts reshape(Facts x, Facts target, boolean allowZero) {
    if (target.ints() == null) {
      return Facts.of(x.dtype(), target.hasRank() && target.knownDims() != null && target.rank() == 1
          ? ShapeMath.unknownDims((int) target.knownDims()[0]) : null);
    }
    return ShapeMath.withShape(x, reshapeTarget(x, target.ints(), allowZero));
  }

  static Facts flatten(Facts x, int axis) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), ShapeMath.unknownDims(2));
    }
    int a = axis < 0 ? axis + x.rank() : axis;
    return ShapeMath.withShape(x, List.of(ShapeMath.product(x.shape().subList(0, a)),
        ShapeMath.product(x.shape().subList(a, x.rank()))));
  }

  static Facts transpose(Facts x, List<Long> perm) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    int[] p = new int[r];
    for (int d = 0; d < r; d++) {
      p[d] = perm == null ? r - 1 - d : (int) (long) perm.get(d);
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      shape.add(x.shape().get(p[d]));
    }
    long[] dims = x.knownDims();
    if (!x.hasContent() || dims == null) {
      return Facts.of(x.dtype(), shape);
    }
    long[] outDims = new long[r];
    for (int d = 0; d < r; d++) {
      outDims[d] = dims[p[d]];
    }
    long[] strides = ShapeMath.strides(dims);
    int count = (int) x.knownCount();
    int[] from = new int[count];
    long[] idx = new long[r];
    for (int i = 0; i < count; i++) {
      long rem = i;
      long src = 0;
      for (int d = r - 1; d >= 0; d--) {
        idx[d] = rem % outDims[d];
        rem /= outDims[d];
        src += idx[d] * strides[p[d]];
      }
      from[i] = (int) src;
    }
    return ShapeMath.pick(x, shape, from);
  }
}
