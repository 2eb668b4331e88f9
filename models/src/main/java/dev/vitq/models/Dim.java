package dev.vitq.models;

/**
 * One dimension of a tensor shape: a fixed size, a named symbol ({@code "batch"}), or unknown.
 *
 * @param size the size, or -1 when not fixed
 * @param symbol the symbolic name, or null
 * @param denotation the ONNX dimension denotation, or null
 */
public record Dim(long size, String symbol, String denotation) {
  public Dim {
    if (size < -1) {
      throw new IllegalArgumentException("Dimension size must be >= 0 or -1 (unknown), got " + size);
    }
    if (size >= 0 && symbol != null) {
      throw new IllegalArgumentException("A dimension is either fixed or symbolic, not both");
    }
  }

  /** A fixed dimension. */
  public static Dim of(long size) {
    return new Dim(size, null, null);
  }

  /** A symbolic dimension. */
  public static Dim symbol(String name) {
    return new Dim(-1, name, null);
  }

  /** A dimension of unknown size. */
  public static Dim unknown() {
    return new Dim(-1, null, null);
  }

  public boolean isFixed() {
    return size >= 0;
  }

  @Override
  public String toString() {
    return isFixed() ? Long.toString(size) : symbol != null ? symbol : "?";
  }
}
