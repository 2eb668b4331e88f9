package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Node;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Operators that reduce axes: the Reduce family, ArgMax/ArgMin and global pooling. */
final class ReductionInference {
  private ReductionInference() {}

  static Facts reduce(KnownFacts known, Node n, Facts x) {
    long[] axes = known.attrOrInput(n, "axes", 1);
    if (!x.hasRank() || axes == null) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    boolean keep = n.intAttr("keepdims", 1) != 0;
    boolean[] reduced = new boolean[r];
    if (axes.length == 0) {
      if (n.intAttr("noop_with_empty_axes", 0) != 0) {
        return Facts.of(x.dtype(), x.shape());
      }
      Arrays.fill(reduced, true);
    }
    for (long a : axes) {
      reduced[(int) (a < 0 ? a + r : a)] = true;
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      if (!reduced[d]) {
        shape.add(x.shape().get(d));
      } else if (keep) {
        shape.add(SymInt.of(1));
      }
    }
    return Facts.of(x.dtype(), shape);
  }

  static Facts argReduce(Node n, Facts x) {
    if (!x.hasRank()) {
      return Facts.of(DType.INT64, null);
    }
    int r = x.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    List<SymInt> shape = new ArrayList<>(x.shape());
    if (n.intAttr("keepdims", 1) != 0) {
      shape.set(axis, SymInt.of(1));
    } else {
      shape.remove(axis);
    }
    return Facts.of(DType.INT64, shape);
  }

  static Facts globalPool(Facts x) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    List<SymInt> shape = new ArrayList<>(x.shape().subList(0, 2));
    for (int i = 2; i < x.rank(); i++) {
      shape.add(SymInt.of(1));
    }
    return Facts.of(x.dtype(), shape);
  }
}
