package dev.vitq.converter.check;

import dev.vitq.models.Blob;
import dev.vitq.models.Graph;
import dev.vitq.models.Node;
import dev.vitq.models.canon.Shapes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * ONNX Runtime's basic QDQ propagation, which runs before partitioning: a per-tensor DequantizeLinear is carried
 * forward, and a QuantizeLinear backward, through the operators that only move values (MaxPool, Reshape, Transpose,
 * Squeeze, Unsqueeze, Slice), by inserting a QuantizeLinear → DequantizeLinear pair on each edge crossed, so each of
 * those operators becomes a quantized unit of its own. Providers see those pairs; a provider without quantized
 * operators (CoreML) is cut at each of them.
 */
final class QdqPropagation {
  private static final Set<String> PROPAGATING = Set.of("MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
      "Slice");

  private final List<Node> nodes;
  private final Set<String> graphOutputs = new HashSet<>();
  private final Set<String> constants;
  private final Shapes shapes;
  private final Set<String> taken = new HashSet<>();

  private QdqPropagation(Graph g, List<Node> live, Set<String> constants, Shapes shapes) {
    this.nodes = new ArrayList<>(live);
    this.constants = constants;
    this.shapes = shapes;
    g.outputs().forEach(v -> graphOutputs.add(v.name()));
    g.nodes().forEach(n -> {
      taken.add(n.name());
      taken.addAll(n.outputs());
    });
    g.inputs().forEach(v -> taken.add(v.name()));
    g.initializers().forEach(t -> taken.add(t.name()));
  }

  /** The live nodes with the pairs inserted, in an order that is still topological. */
  static List<Node> apply(Graph g, List<Node> live, Set<String> constants, Shapes shapes) {
    QdqPropagation p = new QdqPropagation(g, live, constants, shapes);
    for (Node dq : List.copyOf(p.nodes)) {
      if (dq.is("DequantizeLinear")) {
        p.forward(dq);
      }
    }
    for (Node q : List.copyOf(p.nodes)) {
      if (q.is("QuantizeLinear")) {
        p.backward(q);
      }
    }
    return p.nodes;
  }

  /** A reader of a value: the node and which of its inputs. */
  private record Edge(String value, Node dst, int input) {}

  private void forward(Node dq) {
    if (!scalarParams(dq) || graphOutputs.contains(dq.output())) {
      return;
    }
    List<Edge> after = edgesFrom(dq.output());
    if (after.size() != 1) {
      return;
    }
    ArrayDeque<List<Edge>> groups = new ArrayDeque<>();
    List<Edge> first = propagationEdges(after.get(0).dst());
    if (!first.isEmpty()) {
      groups.push(first);
    }
    while (!groups.isEmpty()) {
      List<Edge> group = groups.pop();
      insertPair(group, dq.input(1), dq.input(2));
      for (Edge e : group) {
        List<Edge> next = propagationEdges(current(e.dst()));
        if (!next.isEmpty()) {
          groups.push(next);
        }
      }
    }
  }

  /** The edges leaving a propagating node's first output, Q readers left out; none if it does not propagate. */
  private List<Edge> propagationEdges(Node n) {
    if (n == null || !propagates(n) || graphOutputs.contains(n.output())) {
      return List.of();
    }
    return edgesFrom(n.output()).stream().filter(e -> !e.dst().is("QuantizeLinear")).toList();
  }

  private void backward(Node q) {
    if (!scalarParams(q)) {
      return;
    }
    Edge edge = previousEdge(q);
    while (edge != null) {
      Node src = producer(edge.value());
      if (src == null || !propagates(src)) {
        return;
      }
      Edge before = previousEdge(src);
      if (before == null) {
        return;
      }
      Node beforeSrc = producer(before.value());
      if (beforeSrc != null && beforeSrc.is("DequantizeLinear")) {
        return;
      }
      insertPair(List.of(before), q.input(1), q.input(2));
      edge = new Edge(before.value(), src, 0);
    }
  }

  /** The edge into a node's input 0 when its producer has no other reader (or it is a graph input). */
  private Edge previousEdge(Node n) {
    Node current = current(n);
    String in = current.input(0);
    if (in.isEmpty()) {
      return null;
    }
    Node p = producer(in);
    if (p != null && (graphOutputs.contains(in) || edgesFrom(in).size() != 1)) {
      return null;
    }
    return new Edge(in, current, 0);
  }

  private boolean scalarParams(Node n) {
    String scale = n.input(1);
    String zp = n.input(2);
    return constants.contains(scale) && single(scale) && (zp.isEmpty() || constants.contains(zp) && single(zp));
  }

  private boolean single(String value) {
    return shapes.dims(value).map(d -> java.util.Arrays.stream(d).reduce(1, (a, b) -> a * b) == 1).orElse(false);
  }

  private static boolean propagates(Node n) {
    return (n.domain().isEmpty() || n.domain().equals(OpTable.ONNX)) && PROPAGATING.contains(n.opType());
  }

  // ---- the graph, edited in place ------------------------------------------------------------------------------

  private List<Edge> edgesFrom(String value) {
    List<Edge> out = new ArrayList<>();
    for (Node n : nodes) {
      for (int i = 0; i < n.inputs().size(); i++) {
        if (n.inputs().get(i).equals(value)) {
          out.add(new Edge(value, n, i));
        }
      }
    }
    return out;
  }

  private Node producer(String value) {
    for (Node n : nodes) {
      if (n.outputs().contains(value)) {
        return n;
      }
    }
    return null;
  }

  /** The node now standing where {@code n} stood (its inputs may have been rewired), found by its outputs. */
  private Node current(Node n) {
    for (Node m : nodes) {
      if (m.outputs().equals(n.outputs()) && m.opType().equals(n.opType())) {
        return m;
      }
    }
    return null;
  }

  /** One QuantizeLinear on the value, one DequantizeLinear per reader, placed before the first reader. */
  private void insertPair(List<Edge> edges, String scale, String zeroPoint) {
    String value = edges.get(0).value();
    List<String> params = zeroPoint.isEmpty() ? List.of(scale) : List.of(scale, zeroPoint);
    String qOut = fresh(value + "_q_to_dq");
    Node q = new Node(fresh(value + "_q"), "QuantizeLinear", "", concat(value, params), List.of(qOut), List.of(),
        Blob.EMPTY);
    int first = Integer.MAX_VALUE;
    List<Node> inserted = new ArrayList<>(List.of(q));
    for (int k = 0; k < edges.size(); k++) {
      Edge e = edges.get(k);
      Node dst = current(e.dst());
      String dqOut = fresh(value + "_post_dq" + (k == 0 ? "" : k));
      inserted.add(new Node(fresh(value + "_dq" + (k == 0 ? "" : k)), "DequantizeLinear", "", concat(qOut, params),
          List.of(dqOut), List.of(), Blob.EMPTY));
      int at = indexOf(dst);
      nodes.set(at, dst.withInput(e.input(), dqOut));
      first = Math.min(first, at);
    }
    nodes.addAll(first, inserted);
  }

  private int indexOf(Node n) {
    for (int i = 0; i < nodes.size(); i++) {
      if (nodes.get(i) == n) {
        return i;
      }
    }
    throw new IllegalStateException("Node " + n + " is not in the graph");
  }

  private static List<String> concat(String first, List<String> rest) {
    List<String> all = new ArrayList<>();
    all.add(first);
    all.addAll(rest);
    return all;
  }

  private String fresh(String base) {
    String name = base;
    for (int i = 1; !taken.add(name); i++) {
      name = base + "_" + i;
    }
    return name;
  }
}
