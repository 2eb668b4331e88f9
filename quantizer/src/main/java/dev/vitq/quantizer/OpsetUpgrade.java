package dev.vitq.quantizer;

import dev.vitq.models.Attribute;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.Shapes;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Raises a model's default-domain opset, rewriting the operators whose signature changed on the way:
 *
 * <ul>
 *   <li>to 13 (per-axis QuantizeLinear and DequantizeLinear, which every plan's per-channel weights use): Squeeze,
 *       Unsqueeze, Split and ReduceSum take their axes or sizes as an input, and Softmax, LogSoftmax and Hardmax stop
 *       flattening their input at the axis (the same on the last axis, as exporters write it; spelled out with
 *       Flatten and Reshape elsewhere);
 *   <li>to 18: the other Reduce operators take their axes as an input;
 *   <li>to 21 for int4 weights.
 * </ul>
 */
final class OpsetUpgrade {
  private static final Set<String> REDUCE = Set.of("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare");
  private static final Set<String> AXES_INPUT_AT_13 = Set.of("Squeeze", "Unsqueeze", "ReduceSum");
  private static final Set<String> SOFTMAX = Set.of("Softmax", "LogSoftmax", "Hardmax");

  private OpsetUpgrade() {}

  static Model to(Model model, long target) throws VitqException {
    long from = model.opset("");
    if (from >= target) {
      return model;
    }
    if (from < 11) {
      throw new VitqException("Quantizing needs opset " + target + ", and vitq upgrades models from opset 11 or later,"
          + " not " + from + "; export the model again at opset 13 or later.");
    }
    Graph g = model.graph();
    Shapes shapes = from < 13 ? Shapes.of(g) : null;
    GraphBuilder b = GraphBuilder.around(g);
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      boolean defaultDomain = n.domain().isEmpty() || n.domain().equals("ai.onnx");
      int start = b.nodes().size();
      Node rewritten = n;
      if (defaultDomain && from < 13 && AXES_INPUT_AT_13.contains(n.opType()) && n.intsAttr("axes").isPresent()) {
        rewritten = attributeToInput(n, "axes", b, 1);
      } else if (defaultDomain && from < 13 && n.is("Split") && n.intsAttr("split").isPresent()) {
        rewritten = attributeToInput(n, "split", b, 1);
      } else if (defaultDomain && from < 13 && SOFTMAX.contains(n.opType())) {
        rewritten = softmax13(n, shapes, b);
      } else if (defaultDomain && REDUCE.contains(n.opType()) && target >= 18 && n.intsAttr("axes").isPresent()) {
        rewritten = attributeToInput(n, "axes", b, 1);
      }
      nodes.addAll(b.nodes().subList(start, b.nodes().size()));
      if (rewritten != null) {
        nodes.add(rewritten);
      }
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(b.initializers());
    long ir = Math.max(model.irVersion(), target >= 21 ? 10 : target >= 18 ? 8 : 7);
    return model.withGraph(g.withNodes(nodes).withInitializers(inits)).withOpset("", target).withIrVersion(ir);
  }

  /** The node with an integer-list attribute moved to a constant input at position {@code at}. */
  private static Node attributeToInput(Node n, String attr, GraphBuilder b, int at) {
    String values = b.longs(n.intsAttr(attr).orElseThrow().stream().mapToLong(Long::longValue).toArray());
    List<Attribute> attrs = new ArrayList<>(n.attributes());
    attrs.removeIf(a -> a.name().equals(attr));
    List<String> in = new ArrayList<>(n.inputs());
    while (in.size() < at) {
      in.add("");
    }
    in.add(at, values);
    return new Node(n.name(), n.opType(), n.domain(), in, n.outputs(), attrs, n.extras());
  }

  /**
   * A Softmax (or LogSoftmax, Hardmax) of opset 11 or 12, which normalises over everything from its axis on, in
   * opset-13 form: the same node on the last axis when that is its axis, else Flatten, the operator, Reshape back.
   * Null when the node was added to the builder instead.
   */
  private static Node softmax13(Node n, Shapes shapes, GraphBuilder b) throws VitqException {
    long axis = n.intAttr("axis", 1);
    int rank = shapes.dims(n.input(0)).map(d -> d.length).orElse(-1);
    if (rank < 0) {
      throw new VitqException("Cannot raise " + n.opType() + " '" + n.name() + "' to opset 13: the rank of its input "
          + "is unknown.");
    }
    long a = axis < 0 ? axis + rank : axis;
    if (a == rank - 1) {
      return n.withAttribute(Attribute.of("axis", -1L));
    }
    String flat = b.op("Flatten", List.of(n.input(0)), Attribute.of("axis", a));
    String normalised = b.op(n.opType(), List.of(flat), Attribute.of("axis", -1L));
    b.add(new Node(n.name(), "Reshape", "", List.of(normalised, b.op("Shape", List.of(n.input(0)))), n.outputs(),
        List.of(), n.extras()));
    return null;
  }
}
