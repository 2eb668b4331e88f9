package dev.vitq.models;

import java.util.List;
import java.util.Objects;

/**
 * A node attribute. Each ONNX attribute type the IR understands has its own record; sparse tensors and type protos
 * are kept whole in {@link OpaqueAttr}.
 *
 * <p>{@code extras} is the rest of the ONNX {@code AttributeProto} (doc string, ref_attr_name), serialized.
 */
public sealed interface Attribute {
  String name();

  Blob extras();

  /** A float attribute. */
  record FloatAttr(String name, float value, Blob extras) implements Attribute {
    public FloatAttr {
      Objects.requireNonNull(name);
      Objects.requireNonNull(extras);
    }
  }

  /** An integer attribute. */
  record IntAttr(String name, long value, Blob extras) implements Attribute {
    public IntAttr {
      Objects.requireNonNull(name);
      Objects.requireNonNull(extras);
    }
  }

  /** A string attribute; ONNX strings are bytes. */
  record StringAttr(String name, Blob value, Blob extras) implements Attribute {
    public StringAttr {
      Objects.requireNonNull(name);
      Objects.requireNonNull(value);
      Objects.requireNonNull(extras);
    }
  }

  /** A tensor attribute (the {@code value} of a Constant, say). */
  record TensorAttr(String name, Tensor value, Blob extras) implements Attribute {
    public TensorAttr {
      Objects.requireNonNull(name);
      Objects.requireNonNull(value);
      Objects.requireNonNull(extras);
    }
  }

  /** A subgraph attribute (the branches of If, the body of Loop). */
  record GraphAttr(String name, Graph value, Blob extras) implements Attribute {
    public GraphAttr {
      Objects.requireNonNull(name);
      Objects.requireNonNull(value);
      Objects.requireNonNull(extras);
    }
  }

  /** A list of floats. */
  record FloatsAttr(String name, List<Float> values, Blob extras) implements Attribute {
    public FloatsAttr {
      Objects.requireNonNull(name);
      values = List.copyOf(values);
      Objects.requireNonNull(extras);
    }
  }

  /** A list of integers. */
  record IntsAttr(String name, List<Long> values, Blob extras) implements Attribute {
    public IntsAttr {
      Objects.requireNonNull(name);
      values = List.copyOf(values);
      Objects.requireNonNull(extras);
    }
  }

  /** A list of strings. */
  record StringsAttr(String name, List<Blob> values, Blob extras) implements Attribute {
    public StringsAttr {
      Objects.requireNonNull(name);
      values = List.copyOf(values);
      Objects.requireNonNull(extras);
    }
  }

  /** A list of tensors. */
  record TensorsAttr(String name, List<Tensor> values, Blob extras) implements Attribute {
    public TensorsAttr {
      Objects.requireNonNull(name);
      values = List.copyOf(values);
      Objects.requireNonNull(extras);
    }
  }

  /** A list of subgraphs. */
  record GraphsAttr(String name, List<Graph> values, Blob extras) implements Attribute {
    public GraphsAttr {
      Objects.requireNonNull(name);
      values = List.copyOf(values);
      Objects.requireNonNull(extras);
    }
  }

  /**
   * An attribute whose value the IR does not model (sparse tensors, type protos, untyped); {@code extras} holds it
   * whole, type included.
   *
   * @param typeCode the ONNX {@code AttributeType} number, 0 when unknown
   */
  record OpaqueAttr(String name, int typeCode, Blob extras) implements Attribute {
    public OpaqueAttr {
      Objects.requireNonNull(name);
      Objects.requireNonNull(extras);
    }
  }

  /** An integer attribute with nothing else. */
  static Attribute of(String name, long value) {
    return new IntAttr(name, value, Blob.EMPTY);
  }

  /** A float attribute with nothing else. */
  static Attribute of(String name, float value) {
    return new FloatAttr(name, value, Blob.EMPTY);
  }

  /** A string attribute with nothing else. */
  static Attribute of(String name, String value) {
    return new StringAttr(name, Blob.utf8(value), Blob.EMPTY);
  }

  /** A tensor attribute with nothing else. */
  static Attribute of(String name, Tensor value) {
    return new TensorAttr(name, value, Blob.EMPTY);
  }

  /** An integer-list attribute with nothing else. */
  static Attribute ofInts(String name, long... values) {
    return new IntsAttr(name, java.util.Arrays.stream(values).boxed().toList(), Blob.EMPTY);
  }
}
