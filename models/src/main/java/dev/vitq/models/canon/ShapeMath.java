package dev.vitq.models.canon;

import dev.vitq.models.DType;
import java.util.ArrayList;
import java.util.List;

/**
 * Shape and element arithmetic the operator families of shape inference share: element counts, strides,
 * broadcasting, picking elements by flat position, and rounding to an element type.
 */
final class ShapeMath {
  private ShapeMath() {}

  /** Largest tensor whose elements are evaluated; shape arithmetic and scalars are far smaller. */
  static final int MAX_CONTENT = 1 << 16;

  /** The element type of an ONNX type code, or null when the code names none. */
  static DType dtype(long code) {
    try {
      return code > 0 && code < 256 ? DType.of((int) code) : null;
    } catch (dev.vitq.models.VitqException e) {
      return null;
    }
  }

  /** Rounds computed values to what the element type holds, as ONNX Runtime's float arithmetic would give. */
  static double[] round(double[] v, DType t) {
    double[] out = v.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] = switch (t) {
        case FLOAT -> (float) out[i];
        case FLOAT16 -> Float.float16ToFloat(Float.floatToFloat16((float) out[i]));
        case BFLOAT16 -> Float.intBitsToFloat(Float.floatToIntBits((float) out[i]) & 0xffff0000);
        default -> out[i];
      };
    }
    return out;
  }

  /** The facts of a value whose elements are {@code data}'s at the given flat positions. */
  static Facts pick(Facts data, List<SymInt> shape, int[] from) {
    if (data.ints() != null) {
      SymInt[] out = new SymInt[from.length];
      for (int i = 0; i < from.length; i++) {
        out[i] = data.ints()[from[i]];
      }
      return new Facts(data.dtype(), shape, out, null);
    }
    if (data.reals() != null) {
      double[] out = new double[from.length];
      for (int i = 0; i < from.length; i++) {
        out[i] = data.reals()[from[i]];
      }
      return new Facts(data.dtype(), shape, null, out);
    }
    return Facts.of(data.dtype(), shape);
  }

  static Facts withShape(Facts x, List<SymInt> shape) {
    return new Facts(x.dtype(), shape, x.ints(), x.reals());
  }

  static SymInt product(List<SymInt> dims) {
    if (dims == null) {
      return SymInt.UNKNOWN;
    }
    SymInt p = SymInt.of(1);
    for (SymInt d : dims) {
      p = p.times(d);
    }
    return p;
  }

  static List<SymInt> unknownDims(int rank) {
    List<SymInt> out = new ArrayList<>();
    for (int i = 0; i < rank; i++) {
      out.add(SymInt.UNKNOWN);
    }
    return out;
  }

  static long[] strides(long[] dims) {
    long[] s = new long[dims.length];
    long acc = 1;
    for (int d = dims.length - 1; d >= 0; d--) {
      s[d] = acc;
      acc *= dims[d];
    }
    return s;
  }

  static long clamp(long v, long lo, long hi) {
    return Math.max(lo, Math.min(hi, v));
  }

  /** Numpy broadcasting of shapes; null when some rank is unknown or the shapes clash. */
  static List<SymInt> broadcast(List<List<SymInt>> shapes) {
    int r = 0;
    for (List<SymInt> s : shapes) {
      if (s == null) {
        return null;
      }
      r = Math.max(r, s.size());
    }
    List<SymInt> out = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      SymInt dim = SymInt.of(1);
      for (List<SymInt> s : shapes) {
        int k = d - (r - s.size());
        if (k < 0) {
          continue;
        }
        SymInt v = s.get(k);
        if (v.isKnown() && v.value() == 1) {
          continue;
        }
        if (dim.isKnown() && dim.value() == 1) {
          dim = v;
        } else if (!dim.equals(v)) {
          // A known size beats a symbol or an unknown (the model would fail otherwise); clashing symbols are unknown.
          if (v.isKnown() && !dim.isKnown()) {
            dim = v;
          } else if (!(dim.isKnown() && !v.isKnown())) {
            dim = dim.isKnown() && v.isKnown() ? dim : SymInt.UNKNOWN;
          }
        }
      }
      out.add(dim);
    }
    return out;
  }

  static long knownCount(List<SymInt> shape) {
    if (shape == null) {
      return -1;
    }
    long n = 1;
    for (SymInt d : shape) {
      if (!d.isKnown() || d.value() < 0) {
        return -1;
      }
      if (Math.multiplyHigh(n, d.value()) != 0 || n * d.value() < 0) {
        return -1;
      }
      n *= d.value();
    }
    return n;
  }
}
