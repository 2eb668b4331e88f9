package dev.vitq.models.onnx;

import dev.vitq.models.Attribute;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks that a model is well formed before anything computes with it: versions vitq and ONNX Runtime know, every
 * value defined once and before use, no cycles, sane shapes, no NaN in weights.
 */
public final class ModelChecker {
  /** The newest ONNX IR version the bundled ONNX Runtime loads. */
  public static final long MAX_IR_VERSION = 13;
  /** The newest default-domain operator set the bundled ONNX Runtime implements. */
  public static final long MAX_OPSET = 26;
  /** Larger declared dimensions are taken for corruption, not for a model. */
  private static final long MAX_DIM = Integer.MAX_VALUE;

  private final String source;

  private ModelChecker(String source) {
    this.source = source;
  }

  /**
   * Checks a model.
   *
   * @param source the file name, for messages
   * @throws VitqException naming the first problem found
   */
  public static void check(Model model, String source) throws VitqException {
    new ModelChecker(source).checkModel(model);
  }

  private void checkModel(Model m) throws VitqException {
    if (m.irVersion() < 3) {
      throw new VitqException(source + " declares ONNX IR version " + m.irVersion()
          + "; vitq reads IR versions 3 to " + MAX_IR_VERSION + ".");
    }
    if (m.irVersion() > MAX_IR_VERSION) {
      throw new VitqException(source + " declares ONNX IR version " + m.irVersion()
          + ", newer than the newest vitq reads (" + MAX_IR_VERSION + ").");
    }
    long opset = m.opset("");
    if (opset <= 0) {
      throw new VitqException(source + " imports no version of the default ONNX operator set.");
    }
    if (opset > MAX_OPSET) {
      throw new VitqException(source + " uses ONNX operator set " + opset + ", newer than the newest vitq and"
          + " ONNX Runtime implement (" + MAX_OPSET + ").");
    }
    checkGraph(m.graph(), Set.of(), true);
  }

  private void checkGraph(Graph g, Set<String> outer, boolean main) throws VitqException {
    String where = main ? source : source + " (subgraph '" + g.name() + "')";
    if (main && g.nodes().isEmpty()) {
      throw new VitqException(where + " has a graph with no nodes.");
    }
    if (g.outputs().isEmpty()) {
      throw new VitqException(where + " has a graph with no outputs.");
    }
    Set<String> defined = new HashSet<>();
    for (Value v : g.inputs()) {
      if (v.name().isEmpty()) {
        throw new VitqException(where + " has a graph input without a name.");
      }
      if (!defined.add(v.name())) {
        throw new VitqException(where + " declares graph input '" + v.name() + "' twice.");
      }
      checkShape(v, where, "input");
    }
    Set<String> initNames = new HashSet<>();
    for (Tensor t : g.initializers()) {
      if (t.name().isEmpty()) {
        throw new VitqException(where + " has an initializer without a name.");
      }
      if (!initNames.add(t.name())) {
        throw new VitqException(where + " has two initializers named '" + t.name() + "'.");
      }
      defined.add(t.name());
      checkFinite(t, where, "initializer '" + t.name() + "'");
    }
    Map<String, Node> producers = new HashMap<>();
    for (Node n : g.nodes()) {
      if (n.opType().isEmpty()) {
        throw new VitqException(where + " has a node" + label(n) + " without an operator type.");
      }
      for (String out : n.outputs()) {
        if (out.isEmpty()) {
          continue;
        }
        if (defined.contains(out) || producers.putIfAbsent(out, n) != null) {
          throw new VitqException(where + " defines value '" + out + "' more than once.");
        }
      }
    }
    defined.addAll(producers.keySet());
    Set<String> visible = new HashSet<>(defined);
    visible.addAll(outer);
    for (Node n : g.nodes()) {
      for (String in : Graph.usedValues(n)) {
        if (!visible.contains(in)) {
          throw new VitqException(where + ": node" + label(n) + " (" + n.opType() + ") reads '" + in
              + "', which nothing in the model defines.");
        }
      }
      for (Attribute a : n.attributes()) {
        switch (a) {
          case Attribute.TensorAttr t -> checkFinite(t.value(), where, "a constant of node" + label(n));
          case Attribute.GraphAttr sub -> checkGraph(sub.value(), visible, false);
          case Attribute.GraphsAttr subs -> {
            for (Graph sub : subs.values()) {
              checkGraph(sub, visible, false);
            }
          }
          default -> {}
        }
      }
    }
    for (Value out : g.outputs()) {
      if (!visible.contains(out.name())) {
        throw new VitqException(where + " names graph output '" + out.name() + "', which nothing computes.");
      }
      checkShape(out, where, "output");
    }
    List<Node> cyclic = g.nodesOnCycles();
    if (!cyclic.isEmpty()) {
      throw new VitqException(where + " has a cycle: node" + label(cyclic.get(0)) + " (" + cyclic.get(0).opType()
          + ") depends on its own output.");
    }
  }

  private void checkShape(Value v, String where, String role) throws VitqException {
    if (v.type() == null || v.type().shape() == null) {
      return;
    }
    List<Dim> shape = v.type().shape();
    for (Dim d : shape) {
      if (d.size() > MAX_DIM) {
        throw new VitqException(where + " declares " + role + " '" + v.name() + "' with an absurd dimension ("
            + d.size() + ").");
      }
    }
  }

  private static String label(Node n) {
    return n.name().isEmpty() ? " producing '" + (n.outputs().isEmpty() ? "" : n.output()) + "'" : " '" + n.name()
        + "'";
  }

  /** NaN in a weight is corruption: no trained network holds one, and it would poison every range it touches. */
  private void checkFinite(Tensor t, String where, String what) throws VitqException {
    ByteBuffer b = t.data();
    long n = t.elementCount();
    boolean nan = false;
    switch (t.dtype()) {
      case FLOAT -> {
        for (int i = 0; i < n && !nan; i++) {
          nan = Float.isNaN(b.getFloat(i * 4));
        }
      }
      case DOUBLE -> {
        for (int i = 0; i < n && !nan; i++) {
          nan = Double.isNaN(b.getDouble(i * 8));
        }
      }
      case FLOAT16 -> {
        for (int i = 0; i < n && !nan; i++) {
          nan = Float.isNaN(Float.float16ToFloat(b.getShort(i * 2)));
        }
      }
      case BFLOAT16 -> {
        for (int i = 0; i < n && !nan; i++) {
          nan = Float.isNaN(Float.intBitsToFloat((b.getShort(i * 2) & 0xffff) << 16));
        }
      }
      default -> {}
    }
    if (nan) {
      throw new VitqException(where + " has NaN values in " + what + ".");
    }
  }
}
