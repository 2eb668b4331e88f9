package dev.vitq.models.canon;

import dev.vitq.models.Node;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Operators that pick, split, join or pad elements: Gather, Slice, Split, Concat and Pad. */
final class SlicingInference {
  private SlicingInference() {}

  static Facts gather(Node n, Facts data, Facts indices) {
    if (!data.hasRank() || !indices.hasRank()) {
      return Facts.of(data.dtype(), null);
    }
    int r = data.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    List<SymInt> shape = new ArrayList<>(data.shape().subList(0, axis));
    shape.addAll(indices.shape());
    shape.addAll(data.shape().subList(axis + 1, r));
    long[] dims = data.knownDims();
    long[] ind = indices.knownLongs();
    long outCount = ShapeMath.knownCount(shape);
    if (dims == null || ind == null || outCount < 0 || outCount > ShapeMath.MAX_CONTENT || !data.hasContent()) {
      return Facts.of(data.dtype(), shape);
    }
    long outer = 1;
    for (int d = 0; d < axis; d++) {
      outer *= dims[d];
    }
    long inner = 1;
    for (int d = axis + 1; d < r; d++) {
      inner *= dims[d];
    }
    int[] from = new int[(int) outCount];
    int k = 0;
    for (long o = 0; o < outer; o++) {
      for (long i : ind) {
        long j = i < 0 ? i + dims[axis] : i;
        if (j < 0 || j >= dims[axis]) {
          return Facts.of(data.dtype(), shape);
        }
        for (long in = 0; in < inner; in++) {
          from[k++] = (int) ((o * dims[axis] + j) * inner + in);
        }
      }
    }
    return ShapeMath.pick(data, shape, from);
  }

  static Facts concat(KnownFacts known, Node n) {
    List<Facts> parts = known.inputs(n);
    Facts first = parts.get(0);
    if (parts.stream().anyMatch(p -> !p.hasRank() || p.rank() != first.rank())) {
      return Facts.of(first.dtype(), null);
    }
    int r = first.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    List<SymInt> shape = new ArrayList<>(first.shape());
    SymInt total = SymInt.of(0);
    for (Facts p : parts) {
      total = total.plus(p.shape().get(axis));
    }
    for (int d = 0; d < r; d++) {
      if (d != axis) {
        for (Facts p : parts) {
          if (!shape.get(d).isKnown() && p.shape().get(d).isKnown()) {
            shape.set(d, p.shape().get(d));
          }
        }
      }
    }
    shape.set(axis, total);
    long count = ShapeMath.knownCount(shape);
    boolean content = parts.stream().allMatch(p -> p.hasContent() && p.knownDims() != null)
        && count >= 0 && count <= ShapeMath.MAX_CONTENT;
    if (!content) {
      return Facts.of(first.dtype(), shape);
    }
    // Flatten every part in order along the axis: outer blocks, then each part's slab.
    long outer = 1;
    for (int d = 0; d < axis; d++) {
      outer *= shape.get(d).value();
    }
    boolean ints = first.ints() != null;
    SymInt[] outInts = ints ? new SymInt[(int) count] : null;
    double[] outReals = ints ? null : new double[(int) count];
    int k = 0;
    for (long o = 0; o < outer; o++) {
      for (Facts p : parts) {
        long slab = p.knownCount() / outer;
        for (long i = 0; i < slab; i++) {
          int src = (int) (o * slab + i);
          if (ints) {
            if (p.ints() == null) {
              return Facts.of(first.dtype(), shape);
            }
            outInts[k++] = p.ints()[src];
          } else {
            if (p.reals() == null) {
              return Facts.of(first.dtype(), shape);
            }
            outReals[k++] = p.reals()[src];
          }
        }
      }
    }
    return new Facts(first.dtype(), shape, outInts, outReals);
  }

  static Facts slice(KnownFacts known, Node n, Facts x) {
    long[] starts;
    long[] ends;
    long[] axes;
    long[] steps;
    if (n.attribute("starts").isPresent()) {
      starts = n.intsAttr("starts").orElseThrow().stream().mapToLong(Long::longValue).toArray();
      ends = n.intsAttr("ends").orElseThrow().stream().mapToLong(Long::longValue).toArray();
      axes = n.intsAttr("axes").map(a -> a.stream().mapToLong(Long::longValue).toArray()).orElse(null);
      steps = null;
    } else {
      starts = known.longs(n, 1);
      ends = known.longs(n, 2);
      axes = n.input(3).isEmpty() ? null : known.longs(n, 3);
      steps = n.input(4).isEmpty() ? null : known.longs(n, 4);
      if ((!n.input(3).isEmpty() && axes == null) || (!n.input(4).isEmpty() && steps == null)) {
        return Facts.of(x.dtype(), x.hasRank() ? ShapeMath.unknownDims(x.rank()) : null);
      }
    }
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    if (starts == null || ends == null) {
      // The sliced axes lose their size; the others keep it.
      List<SymInt> shape = new ArrayList<>(x.shape());
      if (axes == null) {
        return Facts.of(x.dtype(), ShapeMath.unknownDims(r));
      }
      for (long a : axes) {
        shape.set((int) (a < 0 ? a + r : a), SymInt.UNKNOWN);
      }
      return Facts.of(x.dtype(), shape);
    }
    List<SymInt> shape = new ArrayList<>(x.shape());
    long[] begin = new long[r];
    long[] step = new long[r];
    Arrays.fill(step, 1);
    for (int i = 0; i < starts.length; i++) {
      int a = (int) (axes == null ? i : axes[i] < 0 ? axes[i] + r : axes[i]);
      long s = steps == null ? 1 : steps[i];
      SymInt dim = x.shape().get(a);
      if (!dim.isKnown()) {
        boolean whole = s == 1 && starts[i] == 0 && ends[i] >= Integer.MAX_VALUE;
        shape.set(a, whole ? dim : SymInt.UNKNOWN);
        begin[a] = 0;
        step[a] = s;
        continue;
      }
      long d = dim.value();
      long b;
      long e;
      long count;
      if (s > 0) {
        b = ShapeMath.clamp(starts[i] < 0 ? starts[i] + d : starts[i], 0, d);
        e = ShapeMath.clamp(ends[i] < 0 ? ends[i] + d : ends[i], 0, d);
        count = Math.max(0, (e - b + s - 1) / s);
      } else if (s < 0) {
        b = ShapeMath.clamp(starts[i] < 0 ? starts[i] + d : starts[i], 0, d - 1);
        e = ShapeMath.clamp(ends[i] < 0 ? ends[i] + d : ends[i], -1, d - 1);
        count = Math.max(0, (b - e + (-s) - 1) / (-s));
      } else {
        return Facts.of(x.dtype(), null);
      }
      begin[a] = b;
      step[a] = s;
      shape.set(a, SymInt.of(count));
    }
    long[] dims = x.knownDims();
    long outCount = ShapeMath.knownCount(shape);
    if (!x.hasContent() || dims == null || outCount < 0) {
      return Facts.of(x.dtype(), shape);
    }
    long[] strides = ShapeMath.strides(dims);
    int[] from = new int[(int) outCount];
    long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
    for (int i = 0; i < from.length; i++) {
      long rem = i;
      long src = 0;
      for (int d = r - 1; d >= 0; d--) {
        long k = rem % outDims[d];
        rem /= outDims[d];
        src += (begin[d] + k * step[d]) * strides[d];
      }
      from[i] = (int) src;
    }
    return ShapeMath.pick(x, shape, from);
  }

  static List<Facts> split(KnownFacts known, Node n, Facts x) {
    int outputs = n.outputs().size();
    if (!x.hasRank()) {
      return List.of();
    }
    int r = x.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    long[] sizes = n.intsAttr("split").map(a -> a.stream().mapToLong(Long::longValue).toArray())
        .orElse(n.input(1).isEmpty() ? null : known.longs(n, 1));
    SymInt dim = x.shape().get(axis);
    if (sizes == null) {
      if (!n.input(1).isEmpty() && n.intsAttr("split").isEmpty()) {
        return List.of();
      }
      if (!dim.isKnown()) {
        return List.of();
      }
      long d = dim.value();
      long chunk = (d + outputs - 1) / outputs;
      sizes = new long[outputs];
      for (int i = 0; i < outputs; i++) {
        sizes[i] = Math.max(0, Math.min(chunk, d - i * chunk));
      }
    }
    List<Facts> out = new ArrayList<>();
    long[] dims = x.knownDims();
    long offset = 0;
    for (long size : sizes) {
      List<SymInt> shape = new ArrayList<>(x.shape());
      shape.set(axis, SymInt.of(size));
      if (x.hasContent() && dims != null) {
        long[] strides = ShapeMath.strides(dims);
        long count = ShapeMath.knownCount(shape);
        long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
        int[] from = new int[(int) count];
        for (int i = 0; i < from.length; i++) {
          long rem = i;
          long src = 0;
          for (int d = r - 1; d >= 0; d--) {
            long k = rem % outDims[d];
            rem /= outDims[d];
            src += (d == axis ? k + offset : k) * strides[d];
          }
          from[i] = (int) src;
        }
        out.add(ShapeMath.pick(x, shape, from));
      } else {
        out.add(Facts.of(x.dtype(), shape));
      }
      offset += size;
    }
    return out;
  }

  static Facts pad(KnownFacts known, Node n, Facts x) {
    long[] pads = n.intsAttr("pads").map(v -> v.stream().mapToLong(Long::longValue).toArray())
        .orElse(n.input(1).isEmpty() ? null : known.longs(n, 1));
    if (!x.hasRank() || pads == null || !n.input(3).isEmpty() || pads.length != 2 * x.rank()) {
      return Facts.of(x.dtype(), x.hasRank() ? ShapeMath.unknownDims(x.rank()) : null);
    }
    int r = x.rank();
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      shape.add(x.shape().get(d).plus(SymInt.of(pads[d] + pads[r + d])));
    }
    return Facts.of(x.dtype(), shape);
  }
}
