package dev.vitq.models;

/** ONNX tensor element types, with their {@code TensorProto.DataType} code and storage width. */
public enum DType {
  FLOAT(1, 32),
  UINT8(2, 8),
  INT8(3, 8),
  UINT16(4, 16),
  INT16(5, 16),
  INT32(6, 32),
  INT64(7, 64),
  STRING(8, 0),
  BOOL(9, 8),
  FLOAT16(10, 16),
  DOUBLE(11, 64),
  UINT32(12, 32),
  UINT64(13, 64),
  COMPLEX64(14, 64),
  COMPLEX128(15, 128),
  BFLOAT16(16, 16),
  FLOAT8E4M3FN(17, 8),
  FLOAT8E4M3FNUZ(18, 8),
  FLOAT8E5M2(19, 8),
  FLOAT8E5M2FNUZ(20, 8),
  UINT4(21, 4),
  INT4(22, 4),
  FLOAT4E2M1(23, 4);

  private static final DType[] BY_CODE = new DType[24];

  static {
    for (DType t : values()) {
      BY_CODE[t.code] = t;
    }
  }

  private final int code;
  private final int bits;

  DType(int code, int bits) {
    this.code = code;
    this.bits = bits;
  }

  /** The {@code TensorProto.DataType} number. */
  public int code() {
    return code;
  }

  /** Bits per element in raw storage; 0 for strings. */
  public int bits() {
    return bits;
  }

  /** Whether elements are packed two per byte (4-bit types). */
  public boolean isPacked() {
    return bits == 4;
  }

  /** Bytes that {@code elements} values occupy in raw (little-endian, packed) storage. */
  public long byteSize(long elements) {
    return (elements * bits + 7) / 8;
  }

  /** Whether {@code code} names a type vitq knows. */
  public static boolean isKnown(int code) {
    return code > 0 && code < BY_CODE.length && BY_CODE[code] != null;
  }

  /**
   * The type with the given code.
   *
   * @throws VitqException if no ONNX type has that code
   */
  public static DType of(int code) throws VitqException {
    if (isKnown(code)) {
      return BY_CODE[code];
    }
    throw new VitqException("Element type " + code + " is not an ONNX tensor type vitq knows.");
  }
}
