package dev.vitq.converter.check;

import dev.vitq.models.DType;
import dev.vitq.models.Node;
import dev.vitq.models.canon.Shapes;
import java.util.Optional;
import java.util.Set;

/**
 * What a provider rule sees of a node: its inputs' element types and shapes (from vitq's shape inference) and which
 * inputs are constant once ONNX Runtime has loaded the model (initializers, Constant nodes and what folds from them).
 */
final class NodeView {
  private final Node node;
  private final Shapes shapes;
  private final Set<String> constants;
  private final long opset;
  private final boolean quantizedUnit;
  private final java.util.Map<String, long[]> dimsOverride;

  NodeView(Node node, Shapes shapes, Set<String> constants, long opset, boolean quantizedUnit,
      java.util.Map<String, long[]> dimsOverride) {
    this.node = node;
    this.shapes = shapes;
    this.constants = constants;
    this.opset = opset;
    this.quantizedUnit = quantizedUnit;
    this.dimsOverride = dimsOverride;
  }

  /** Whether the node is the operator of a DequantizeLinear → op → QuantizeLinear unit. */
  boolean quantizedUnit() {
    return quantizedUnit;
  }

  Node node() {
    return node;
  }

  /** The default-domain opset the model imports. */
  long opset() {
    return opset;
  }

  /** Input {@code i}'s dimensions (-1 for a dynamic or unknown one), empty when absent or of unknown rank. */
  Optional<long[]> dims(int i) {
    String in = node.input(i);
    if (dimsOverride.containsKey(in)) {
      return Optional.of(dimsOverride.get(in).clone());
    }
    return in.isEmpty() ? Optional.empty() : shapes.dims(in);
  }

  /** Input {@code i}'s rank, or -1 when unknown or absent. */
  int rank(int i) {
    return dims(i).map(d -> d.length).orElse(-1);
  }

  /** Whether input {@code i}'s rank is unknown or equals one of {@code ranks}. */
  boolean rankIs(int i, int... ranks) {
    int r = rank(i);
    if (r < 0) {
      return true;
    }
    for (int k : ranks) {
      if (k == r) {
        return true;
      }
    }
    return false;
  }

  /** Input {@code i}'s element type, if known. */
  Optional<DType> dtype(int i) {
    String in = node.input(i);
    return in.isEmpty() ? Optional.empty() : shapes.dtype(in);
  }

  /** Output {@code i}'s element type, if known. */
  Optional<DType> outputDtype(int i) {
    String out = i < node.outputs().size() ? node.outputs().get(i) : "";
    return out.isEmpty() ? Optional.empty() : shapes.dtype(out);
  }

  /** Whether input {@code i} is absent or constant once the model is loaded. */
  boolean constantOrAbsent(int i) {
    String in = node.input(i);
    return in.isEmpty() || constants.contains(in);
  }

  /** Whether input {@code i} is present and constant. */
  boolean constant(int i) {
    String in = node.input(i);
    return !in.isEmpty() && constants.contains(in);
  }

  /** Whether every input from {@code from} on is absent or constant. */
  boolean constantFrom(int from) {
    for (int i = from; i < node.inputs().size(); i++) {
      if (!constantOrAbsent(i)) {
        return false;
      }
    }
    return true;
  }
}
