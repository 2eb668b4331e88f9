package dev.vitq.models;

import java.util.Objects;

/**
 * A named value of a graph as declared in its inputs, outputs or value_info.
 *
 * @param name the value's name, unique in its graph
 * @param type the tensor type, or null when undeclared or not a tensor (such types live in {@code extras})
 * @param extras the rest of the ONNX {@code ValueInfoProto} (doc string, metadata, non-tensor types), serialized
 */
public record Value(String name, TensorType type, Blob extras) {
  public Value {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(extras, "extras");
  }

  /** A value with a tensor type and nothing else. */
  public static Value of(String name, TensorType type) {
    return new Value(name, type, Blob.EMPTY);
  }

  /** This value renamed. */
  public Value withName(String newName) {
    return new Value(newName, type, extras);
  }

  /** This value with another type. */
  public Value withType(TensorType newType) {
    return new Value(name, newType, extras);
  }
}
