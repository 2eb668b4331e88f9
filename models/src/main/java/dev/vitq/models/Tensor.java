package dev.vitq.models;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Objects;

/**
 * A constant tensor: an initializer or the value of a {@code Constant} node or tensor attribute.
 *
 * <p>Data is held in ONNX raw layout: little-endian, row-major, 4-bit types packed two to a byte (low nibble
 * first). String tensors keep their strings in {@code extras} and have empty data.
 *
 * @param name the tensor's name (empty inside attributes)
 * @param dtype the element type
 * @param dims the shape; empty for a scalar
 * @param data exactly {@code dtype.byteSize(elementCount())} bytes
 * @param extras the rest of the ONNX {@code TensorProto} (doc string, metadata, string data), serialized
 */
public record Tensor(String name, DType dtype, List<Long> dims, ByteBuffer data, Blob extras) {
  public Tensor {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(extras, "extras");
    dims = List.copyOf(dims);
    long count = elementCount(dims);
    long expected = dtype == DType.STRING ? 0 : dtype.byteSize(count);
    if (data.remaining() != expected) {
      throw new IllegalArgumentException(
          "Tensor '%s' %s%s needs %d bytes but has %d".formatted(name, dtype, dims, expected, data.remaining()));
    }
    data = data.slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Number of elements of a shape, or -1 when it overflows a long. */
  public static long elementCount(List<Long> dims) {
    long n = 1;
    for (long d : dims) {
      if (d < 0) {
        throw new IllegalArgumentException("Negative dimension " + d + " in " + dims);
      }
      n = Math.multiplyHigh(n, d) != 0 || n * d < 0 ? -1 : n * d;
      if (n < 0) {
        return -1;
      }
    }
    return n;
  }

  /** A float32 tensor. */
  public static Tensor ofFloats(String name, List<Long> dims, float[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return new Tensor(name, DType.FLOAT, dims, b, Blob.EMPTY);
  }

  /** An int64 tensor. */
  public static Tensor ofLongs(String name, List<Long> dims, long[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    b.asLongBuffer().put(values);
    return new Tensor(name, DType.INT64, dims, b, Blob.EMPTY);
  }

  /** An int32 tensor. */
  public static Tensor ofInts(String name, List<Long> dims, int[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(values);
    return new Tensor(name, DType.INT32, dims, b, Blob.EMPTY);
  }

  /** A tensor of 8-bit or packed 4-bit elements given as raw bytes. */
  public static Tensor ofBytes(String name, DType dtype, List<Long> dims, byte[] raw) {
    return new Tensor(name, dtype, dims, ByteBuffer.wrap(raw), Blob.EMPTY);
  }

  /** A read-only view of the data, positioned at 0, little-endian. */
  @Override
  public ByteBuffer data() {
    return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  public long elementCount() {
    return elementCount(dims);
  }

  public int rank() {
    return dims.size();
  }

  /** This tensor under another name. */
  public Tensor withName(String newName) {
    return new Tensor(newName, dtype, dims, data, extras);
  }

  /** This tensor with another shape of the same element count. */
  public Tensor reshaped(List<Long> newDims) {
    return new Tensor(name, dtype, newDims, data, extras);
  }

  /** The elements as floats; defined for float, float16, bfloat16, double and the integer types. */
  public float[] floats() {
    int n = Math.toIntExact(elementCount());
    float[] out = new float[n];
    ByteBuffer b = data();
    switch (dtype) {
      case FLOAT -> b.asFloatBuffer().get(out);
      case DOUBLE -> {
        for (int i = 0; i < n; i++) {
          out[i] = (float) b.getDouble(i * 8);
        }
      }
      case FLOAT16 -> {
        for (int i = 0; i < n; i++) {
          out[i] = Float.float16ToFloat(b.getShort(i * 2));
        }
      }
      case BFLOAT16 -> {
        for (int i = 0; i < n; i++) {
          out[i] = Float.intBitsToFloat((b.getShort(i * 2) & 0xffff) << 16);
        }
      }
      default -> {
        long[] longs = longs();
        for (int i = 0; i < n; i++) {
          out[i] = longs[i];
        }
      }
    }
    return out;
  }

  /** The elements as longs; defined for the integer types and bool. */
  public long[] longs() {
    int n = Math.toIntExact(elementCount());
    long[] out = new long[n];
    ByteBuffer b = data();
    for (int i = 0; i < n; i++) {
      out[i] =
          switch (dtype) {
            case INT64, UINT64 -> b.getLong(i * 8);
            case INT32 -> b.getInt(i * 4);
            case UINT32 -> b.getInt(i * 4) & 0xffffffffL;
            case INT16 -> b.getShort(i * 2);
            case UINT16 -> b.getShort(i * 2) & 0xffff;
            case INT8 -> b.get(i);
            case UINT8, BOOL -> b.get(i) & 0xff;
            case INT4 -> (byte) (nibble(b, i) << 4) >> 4;
            case UINT4 -> nibble(b, i);
            default -> throw new IllegalStateException("Tensor '" + name + "' of " + dtype + " holds no integers");
          };
    }
    return out;
  }

  private static int nibble(ByteBuffer b, int i) {
    int packed = b.get(i >>> 1) & 0xff;
    return (i & 1) == 0 ? packed & 0x0f : packed >>> 4;
  }

  @Override
  public String toString() {
    return "Tensor[" + name + " " + dtype + dims + "]";
  }
}
