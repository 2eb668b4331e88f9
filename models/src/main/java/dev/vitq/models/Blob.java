package dev.vitq.models;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * An immutable byte string compared by content.
 *
 * <p>The IR uses it for ONNX string attributes (bytes, not necessarily UTF-8) and for the serialized remainder of a
 * protobuf message whose fields the IR does not model, which the writer merges back so nothing is lost.
 */
public final class Blob {
  /** The empty blob. */
  public static final Blob EMPTY = new Blob(new byte[0]);

  private final byte[] bytes;

  private Blob(byte[] bytes) {
    this.bytes = bytes;
  }

  /** A blob holding a copy of {@code bytes}. */
  public static Blob of(byte[] bytes) {
    return bytes.length == 0 ? EMPTY : new Blob(bytes.clone());
  }

  /** A blob holding the UTF-8 encoding of {@code text}. */
  public static Blob utf8(String text) {
    return of(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  /** A copy of the bytes. */
  public byte[] toByteArray() {
    return bytes.clone();
  }

  /** The bytes decoded as UTF-8 (malformed sequences become U+FFFD). */
  public String toUtf8() {
    return new String(bytes, java.nio.charset.StandardCharsets.UTF_8);
  }

  public int size() {
    return bytes.length;
  }

  public boolean isEmpty() {
    return bytes.length == 0;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Blob other && Arrays.equals(bytes, other.bytes);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(bytes);
  }

  @Override
  public String toString() {
    return bytes.length <= 32 ? "Blob[" + HexFormat.of().formatHex(bytes) + "]" : "Blob[" + bytes.length + " bytes]";
  }
}
