package dev.vitq.models;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Collects new nodes and initializers under fresh, unique names. Graph passes and the model builder use it; it never
 * changes a graph, it only produces the pieces for a new one.
 *
 * {@snippet lang="java" :
 * GraphBuilder b = GraphBuilder.around(graph);
 * String y = b.op("Relu", List.of("x"));
 * Graph next = graph.withNodes(concat(graph.nodes(), b.nodes()));
 * }
 */
public final class GraphBuilder {
  private final Set<String> taken;
  private final List<Node> nodes = new ArrayList<>();
  private final List<Tensor> initializers = new ArrayList<>();
  private String scope = "";

  private GraphBuilder(Set<String> taken) {
    this.taken = taken;
  }

  /** A builder for a graph from scratch. */
  public static GraphBuilder empty() {
    return new GraphBuilder(new HashSet<>());
  }

  /** A builder whose names avoid every value and node name already in {@code graph}. */
  public static GraphBuilder around(Graph graph) {
    Set<String> taken = new HashSet<>();
    graph.inputs().forEach(v -> taken.add(v.name()));
    graph.outputs().forEach(v -> taken.add(v.name()));
    graph.initializers().forEach(t -> taken.add(t.name()));
    for (Node n : graph.nodes()) {
      taken.addAll(n.outputs());
      taken.add(n.name());
    }
    return new GraphBuilder(taken);
  }

  /** Prefixes the names of the nodes and values made from now on with {@code "/" + scope + "/"}. */
  public GraphBuilder scope(String newScope) {
    this.scope = newScope;
    return this;
  }

  /** A name not used before, derived from {@code hint}. */
  public String fresh(String hint) {
    return unique(scope.isEmpty() || hint.startsWith("/") ? hint : "/" + scope + "/" + hint);
  }

  private String unique(String base) {
    String name = base;
    for (int i = 1; !taken.add(name); i++) {
      name = base + "_" + i;
    }
    return name;
  }

  /** Reserves a name chosen elsewhere (a graph input, say) so nothing else takes it. */
  public String reserve(String name) {
    if (!taken.add(name)) {
      throw new IllegalArgumentException("Name '" + name + "' is already taken");
    }
    return name;
  }

  /** Adds a default-domain node with one output and returns that output's name. */
  public String op(String opType, List<String> inputs, Attribute... attrs) {
    return op("", opType, inputs, 1, attrs).get(0);
  }

  /** Adds a node with {@code outputCount} outputs and returns their names. */
  public List<String> op(String domain, String opType, List<String> inputs, int outputCount, Attribute... attrs) {
    String nodeName = fresh(opType);
    List<String> outs = new ArrayList<>(outputCount);
    for (int i = 0; i < outputCount; i++) {
      outs.add(fresh(nodeName.substring(nodeName.lastIndexOf('/') + 1) + "_output_" + i));
    }
    nodes.add(new Node(nodeName, opType, domain, inputs, outs, Arrays.asList(attrs), Blob.EMPTY));
    return outs;
  }

  /** Adds a node as given; its names must not clash. */
  public void add(Node node) {
    nodes.add(node);
  }

  /** Adds an initializer under a fresh name derived from {@code hint} (not scoped) and returns that name. */
  public String initializer(String hint, Tensor tensor) {
    String name = unique(hint);
    initializers.add(tensor.withName(name));
    return name;
  }

  /** Adds an initializer under exactly the name it has. */
  public String initializer(Tensor tensor) {
    reserve(tensor.name());
    initializers.add(tensor);
    return tensor.name();
  }

  /** A {@code Constant} node holding int64 values (1-D). */
  public String longs(long... values) {
    return op("Constant", List.of(), Attribute.of("value", Tensor.ofLongs("", List.of((long) values.length), values)));
  }

  /** A {@code Constant} node holding one int64 scalar. */
  public String scalarLong(long value) {
    return op("Constant", List.of(), Attribute.of("value", Tensor.ofLongs("", List.of(), new long[] {value})));
  }

  /** A {@code Constant} node holding one float scalar. */
  public String scalar(float value) {
    return op("Constant", List.of(), Attribute.of("value", Tensor.ofFloats("", List.of(), new float[] {value})));
  }

  /** The nodes added so far, in order. */
  public List<Node> nodes() {
    return List.copyOf(nodes);
  }

  /** The initializers added so far, in order. */
  public List<Tensor> initializers() {
    return List.copyOf(initializers);
  }
}
