package dev.vitq.models.canon;

import dev.vitq.models.DType;
import java.util.List;

/**
 * What shape inference knows about one value: its element type and shape when known and, for small tensors (shape
 * arithmetic, scalars), its elements: integers as {@link SymInt}s (known, a multiple of a symbolic dimension, or
 * unknown), floating-point values only when all are known.
 *
 * @param dtype the element type, or null when unknown
 * @param shape the dimensions, or null when even the rank is unknown
 * @param ints the elements of an integer or bool tensor, or null
 * @param reals the elements of a floating-point tensor, or null
 */
record Facts(DType dtype, List<SymInt> shape, SymInt[] ints, double[] reals) {
  static final Facts UNKNOWN = new Facts(null, null, null, null);

  Facts {
    shape = shape == null ? null : List.copyOf(shape);
  }

  static Facts of(DType dtype, List<SymInt> shape) {
    return new Facts(dtype, shape, null, null);
  }

  /** Whether the elements are tracked (all, or integers some of which are symbolic). */
  boolean hasContent() {
    return ints != null || reals != null;
  }

  boolean hasRank() {
    return shape != null;
  }

  int rank() {
    return shape.size();
  }

  /** The element count when every dimension is known, else -1. */
  long knownCount() {
    if (shape == null) {
      return -1;
    }
    long n = 1;
    for (SymInt d : shape) {
      if (!d.isKnown()) {
        return -1;
      }
      n *= d.value();
    }
    return n;
  }

  /** The dimensions when all are known, else null. */
  long[] knownDims() {
    if (shape == null) {
      return null;
    }
    long[] dims = new long[shape.size()];
    for (int i = 0; i < dims.length; i++) {
      if (!shape.get(i).isKnown()) {
        return null;
      }
      dims[i] = shape.get(i).value();
    }
    return dims;
  }

  /** Whether every element is known. */
  boolean fullyKnown() {
    if (reals != null) {
      return true;
    }
    if (ints == null) {
      return false;
    }
    for (SymInt v : ints) {
      if (!v.isKnown()) {
        return false;
      }
    }
    return true;
  }

  /** The elements as longs when all are known integers, else null. */
  long[] knownLongs() {
    if (ints == null || !fullyKnown()) {
      return null;
    }
    long[] out = new long[ints.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = ints[i].value();
    }
    return out;
  }

  static boolean isInteger(DType t) {
    return switch (t) {
      case INT64, INT32, INT16, INT8, UINT8, UINT16, UINT32, UINT64, BOOL -> true;
      default -> false;
    };
  }

  static boolean isReal(DType t) {
    return t == DType.FLOAT || t == DType.FLOAT16 || t == DType.DOUBLE || t == DType.BFLOAT16;
  }
}
