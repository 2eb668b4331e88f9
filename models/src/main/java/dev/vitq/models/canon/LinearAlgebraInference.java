package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Node;
import java.util.ArrayList;
import java.util.List;

/** MatMul, Gemm, convolution and windowed pooling (which shares the convolution's output-size arithmetic). */
final class LinearAlgebraInference {
  private LinearAlgebraInference() {}

  static Facts matmul(Facts a, Facts b, DType dtype) {
    if (!a.hasRank() || !b.hasRank() || a.rank() == 0 || b.rank() == 0) {
      return Facts.of(dtype, null);
    }
    List<SymInt> as = new ArrayList<>(a.shape());
    List<SymInt> bs = new ArrayList<>(b.shape());
    boolean aVec = as.size() == 1;
    boolean bVec = bs.size() == 1;
    if (aVec) {
      as.add(0, SymInt.of(1));
    }
    if (bVec) {
      bs.add(SymInt.of(1));
    }
    List<SymInt> batch = ShapeMath.broadcast(List.of(as.subList(0, as.size() - 2), bs.subList(0, bs.size() - 2)));
    if (batch == null) {
      return Facts.of(dtype, null);
    }
    List<SymInt> shape = new ArrayList<>(batch);
    if (!aVec) {
      shape.add(as.get(as.size() - 2));
    }
    if (!bVec) {
      shape.add(bs.get(bs.size() - 1));
    }
    return Facts.of(dtype, shape);
  }

  static Facts gemm(Node n, Facts a, Facts b) {
    if (!a.hasRank() || !b.hasRank() || a.rank() != 2 || b.rank() != 2) {
      return Facts.of(a.dtype(), ShapeMath.unknownDims(2));
    }
    SymInt m = n.intAttr("transA", 0) != 0 ? a.shape().get(1) : a.shape().get(0);
    SymInt k = n.intAttr("transB", 0) != 0 ? b.shape().get(0) : b.shape().get(1);
    return Facts.of(a.dtype(), List.of(m, k));
  }

  static Facts conv(Node n, Facts x, List<SymInt> w, DType dtype) {
    if (!x.hasRank() || w == null || w.size() != x.rank()) {
      return Facts.of(dtype, x.hasRank() ? ShapeMath.unknownDims(x.rank()) : null);
    }
    List<SymInt> shape = new ArrayList<>();
    shape.add(x.shape().get(0));
    shape.add(w.get(0));
    List<SymInt> kernel = w.subList(2, w.size());
    shape.addAll(spatial(n, x, kernel));
    return Facts.of(dtype, shape);
  }

  static Facts pool(Node n, Facts x) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    List<SymInt> kernel = n.intsAttr("kernel_shape").orElse(List.of()).stream().map(SymInt::of).toList();
    List<SymInt> shape = new ArrayList<>(x.shape().subList(0, 2));
    shape.addAll(spatial(n, x, kernel));
    return Facts.of(x.dtype(), shape);
  }

  /** Output spatial sizes of a convolution or pooling window. */
  private static List<SymInt> spatial(Node n, Facts x, List<SymInt> kernel) {
    int s = x.rank() - 2;
    List<SymInt> out = new ArrayList<>();
    String autoPad = n.stringAttr("auto_pad").orElse("NOTSET");
    for (int i = 0; i < s; i++) {
      SymInt in = x.shape().get(2 + i);
      if (!in.isKnown() || i >= kernel.size() || !kernel.get(i).isKnown()) {
        out.add(SymInt.UNKNOWN);
        continue;
      }
      final int axis = i;
      long stride = n.intsAttr("strides").map(v -> axis < v.size() ? v.get(axis) : 1L).orElse(1L);
      long dilation = n.intsAttr("dilations").map(v -> axis < v.size() ? v.get(axis) : 1L).orElse(1L);
      long k = (kernel.get(i).value() - 1) * dilation + 1;
      long size;
      if (autoPad.equals("SAME_UPPER") || autoPad.equals("SAME_LOWER")) {
        size = (in.value() + stride - 1) / stride;
      } else if (autoPad.equals("VALID")) {
        size = (in.value() - k) / stride + 1;
      } else {
        List<Long> pads = n.intsAttr("pads").orElse(List.of());
        long padBegin = axis < pads.size() ? pads.get(axis) : 0;
        long padEnd = s + axis < pads.size() ? pads.get(s + axis) : 0;
        long span = in.value() + padBegin + padEnd - k;
        size = n.intAttr("ceil_mode", 0) != 0 ? Math.floorDiv(span + stride - 1, stride) + 1
            : Math.floorDiv(span, stride) + 1;
      }
      out.add(SymInt.of(size));
    }
    return out;
  }
}
