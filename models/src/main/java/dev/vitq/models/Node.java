package dev.vitq.models;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One operator application.
 *
 * <p>Inputs and outputs are value names; an empty name marks an omitted optional input or output, as in ONNX. A
 * node is identified within its graph by its first output, which SSA makes unique; its {@code name} is free text and
 * may be empty or repeated.
 *
 * @param name the node's name (may be empty)
 * @param opType the operator
 * @param domain the operator set domain; empty for the default ONNX domain
 * @param inputs input value names, in order
 * @param outputs output value names, in order
 * @param attributes attributes, in file order
 * @param extras the rest of the ONNX {@code NodeProto} (doc string, overload, metadata), serialized
 */
public record Node(
    String name,
    String opType,
    String domain,
    List<String> inputs,
    List<String> outputs,
    List<Attribute> attributes,
    Blob extras) {

  public Node {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(opType, "opType");
    Objects.requireNonNull(domain, "domain");
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    attributes = List.copyOf(attributes);
    Objects.requireNonNull(extras, "extras");
  }

  /** A default-domain node with nothing else. */
  public static Node of(String name, String opType, List<String> inputs, List<String> outputs, Attribute... attrs) {
    return new Node(name, opType, "", inputs, outputs, List.of(attrs), Blob.EMPTY);
  }

  /** Whether this is the default-domain operator {@code op}. */
  public boolean is(String op) {
    return opType.equals(op) && (domain.isEmpty() || domain.equals("ai.onnx"));
  }

  /** The first output, which identifies the node. */
  public String output() {
    return outputs.get(0);
  }

  /** Input {@code i}, or the empty string when absent. */
  public String input(int i) {
    return i < inputs.size() ? inputs.get(i) : "";
  }

  /** The named attribute, if present. */
  public Optional<Attribute> attribute(String attrName) {
    for (Attribute a : attributes) {
      if (a.name().equals(attrName)) {
        return Optional.of(a);
      }
    }
    return Optional.empty();
  }

  /** An integer attribute, or {@code fallback} when absent or of another type. */
  public long intAttr(String attrName, long fallback) {
    return attribute(attrName).orElse(null) instanceof Attribute.IntAttr i ? i.value() : fallback;
  }

  /** A float attribute, or {@code fallback} when absent or of another type. */
  public float floatAttr(String attrName, float fallback) {
    return attribute(attrName).orElse(null) instanceof Attribute.FloatAttr f ? f.value() : fallback;
  }

  /** An integer-list attribute, or empty when absent or of another type. */
  public Optional<List<Long>> intsAttr(String attrName) {
    return attribute(attrName).orElse(null) instanceof Attribute.IntsAttr i ? Optional.of(i.values()) : Optional.empty();
  }

  /** A string attribute decoded as UTF-8, or empty. */
  public Optional<String> stringAttr(String attrName) {
    return attribute(attrName).orElse(null) instanceof Attribute.StringAttr s
        ? Optional.of(s.value().toUtf8())
        : Optional.empty();
  }

  /** This node with input {@code i} replaced. */
  public Node withInput(int i, String value) {
    List<String> in = new ArrayList<>(inputs);
    while (in.size() <= i) {
      in.add("");
    }
    in.set(i, value);
    return new Node(name, opType, domain, in, outputs, attributes, extras);
  }

  /** This node with all its inputs replaced. */
  public Node withInputs(List<String> newInputs) {
    return new Node(name, opType, domain, newInputs, outputs, attributes, extras);
  }

  /** This node with all its outputs replaced. */
  public Node withOutputs(List<String> newOutputs) {
    return new Node(name, opType, domain, inputs, newOutputs, attributes, extras);
  }

  /** This node with the attribute of the same name replaced, or added at the end. */
  public Node withAttribute(Attribute attr) {
    List<Attribute> attrs = new ArrayList<>(attributes);
    attrs.removeIf(a -> a.name().equals(attr.name()));
    attrs.add(attr);
    return new Node(name, opType, domain, inputs, outputs, attrs, extras);
  }

  @Override
  public String toString() {
    return opType + (name.isEmpty() ? "" : "[" + name + "]") + inputs + "->" + outputs;
  }
}
