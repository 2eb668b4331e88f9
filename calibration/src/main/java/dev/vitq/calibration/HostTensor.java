package dev.vitq.calibration;

import dev.vitq.models.DType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A tensor in Java memory, passed to and from ONNX Runtime: element type, shape and little-endian data.
 *
 * @param dtype float, int8, uint8 or int64
 * @param shape the dimensions
 * @param data exactly the elements, little-endian
 */
public record HostTensor(DType dtype, long[] shape, ByteBuffer data) {
  public HostTensor {
    shape = shape.clone();
    long n = elementCount(shape);
    if (data.remaining() != n * (dtype.bits() / 8)) {
      throw new IllegalArgumentException("Shape " + Arrays.toString(shape) + " of " + dtype + " needs "
          + n * (dtype.bits() / 8) + " bytes, got " + data.remaining());
    }
    data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** A float tensor over {@code values}. */
  public static HostTensor ofFloats(long[] shape, float[] values) {
    ByteBuffer b = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return new HostTensor(DType.FLOAT, shape, b);
  }

  static long elementCount(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  @Override
  public ByteBuffer data() {
    return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  public long elementCount() {
    return elementCount(shape);
  }

  /** The elements as floats (float tensors only). */
  public float[] floats() {
    if (dtype != DType.FLOAT) {
      throw new IllegalStateException("Tensor holds " + dtype + ", not floats");
    }
    float[] out = new float[Math.toIntExact(elementCount())];
    data().asFloatBuffer().get(out);
    return out;
  }

  /** The raw bytes (8-bit tensors). */
  public byte[] bytes() {
    byte[] out = new byte[data.remaining()];
    data().get(out);
    return out;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof HostTensor t && t.dtype == dtype && Arrays.equals(t.shape, shape) && t.data.equals(data);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(shape) + data.hashCode();
  }

  @Override
  public String toString() {
    return "HostTensor[" + dtype + Arrays.toString(shape) + "]";
  }
}
