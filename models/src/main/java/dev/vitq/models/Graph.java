package dev.vitq.models;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * A computation graph: nodes over named values, with inputs, outputs, initializers and declared value types.
 *
 * <p>Node order is the file's order; it need not be topological ({@link #topologicallySorted()} makes it so). A graph
 * is a value: the {@code with*} methods return new graphs and passes are functions from graph to graph.
 *
 * @param name the graph's name
 * @param nodes the nodes, in file order
 * @param inputs the graph inputs
 * @param outputs the graph outputs
 * @param initializers constant tensors, referenced by name
 * @param valueInfo declared types of intermediate values
 * @param extras the rest of the ONNX {@code GraphProto} (doc string, sparse initializers, annotations), serialized
 */
public record Graph(
    String name,
    List<Node> nodes,
    List<Value> inputs,
    List<Value> outputs,
    List<Tensor> initializers,
    List<Value> valueInfo,
    Blob extras) {

  public Graph {
    Objects.requireNonNull(name, "name");
    nodes = List.copyOf(nodes);
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    initializers = List.copyOf(initializers);
    valueInfo = List.copyOf(valueInfo);
    Objects.requireNonNull(extras, "extras");
  }

  /** The initializer of that name, if any. */
  public Optional<Tensor> initializer(String valueName) {
    for (Tensor t : initializers) {
      if (t.name().equals(valueName)) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }

  /** The graph input of that name, if any. */
  public Optional<Value> input(String valueName) {
    return inputs.stream().filter(v -> v.name().equals(valueName)).findFirst();
  }

  public Graph withNodes(List<Node> newNodes) {
    return new Graph(name, newNodes, inputs, outputs, initializers, valueInfo, extras);
  }

  public Graph withInputs(List<Value> newInputs) {
    return new Graph(name, nodes, newInputs, outputs, initializers, valueInfo, extras);
  }

  public Graph withOutputs(List<Value> newOutputs) {
    return new Graph(name, nodes, inputs, newOutputs, initializers, valueInfo, extras);
  }

  public Graph withInitializers(List<Tensor> newInitializers) {
    return new Graph(name, nodes, inputs, outputs, newInitializers, valueInfo, extras);
  }

  public Graph withValueInfo(List<Value> newValueInfo) {
    return new Graph(name, nodes, inputs, outputs, initializers, newValueInfo, extras);
  }

  /**
   * The nodes in an order where every value is produced before it is used, keeping file order among nodes that are
   * free to go; empty when the nodes form a cycle. Values from outside the graph (inputs, initializers, outer
   * scopes) count as available.
   */
  public Optional<List<Node>> topologicalOrder() {
    List<Node> order = kahn();
    return order.size() == nodes.size() ? Optional.of(order) : Optional.empty();
  }

  /** Nodes that no topological order can place: those on or behind a cycle (empty for a DAG). */
  public List<Node> nodesOnCycles() {
    java.util.Set<Node> placed = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    placed.addAll(kahn());
    return nodes.stream().filter(n -> !placed.contains(n)).toList();
  }

  /** Kahn's algorithm; returns the nodes it could order, which is all of them unless there is a cycle. */
  private List<Node> kahn() {
    Map<String, Integer> producerOf = new HashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      for (String out : nodes.get(i).outputs()) {
        if (!out.isEmpty()) {
          producerOf.putIfAbsent(out, i);
        }
      }
    }
    int[] pending = new int[nodes.size()];
    List<List<Integer>> dependents = new ArrayList<>(nodes.size());
    for (int i = 0; i < nodes.size(); i++) {
      dependents.add(new ArrayList<>(2));
    }
    for (int i = 0; i < nodes.size(); i++) {
      Set<Integer> seen = new HashSet<>();
      for (String in : usedValues(nodes.get(i))) {
        Integer p = producerOf.get(in);
        if (p != null && seen.add(p)) {
          pending[i]++;
          dependents.get(p).add(i);
        }
      }
    }
    // A min-heap on file position keeps the original order wherever dependencies allow it.
    java.util.PriorityQueue<Integer> ready = new java.util.PriorityQueue<>();
    for (int i = 0; i < nodes.size(); i++) {
      if (pending[i] == 0) {
        ready.add(i);
      }
    }
    List<Node> order = new ArrayList<>(nodes.size());
    while (!ready.isEmpty()) {
      int i = ready.poll();
      order.add(nodes.get(i));
      for (int d : dependents.get(i)) {
        if (--pending[d] == 0) {
          ready.add(d);
        }
      }
    }
    return order;
  }

  /**
   * This graph with its nodes in topological order.
   *
   * @throws IllegalStateException if the nodes form a cycle
   */
  public Graph topologicallySorted() {
    return withNodes(topologicalOrder().orElseThrow(() -> new IllegalStateException("Graph '" + name + "' has a cycle")));
  }

  /**
   * The values a node reads: its inputs and, for subgraph attributes, the outer-scope values those subgraphs use.
   */
  public static Set<String> usedValues(Node node) {
    Set<String> used = new java.util.LinkedHashSet<>();
    for (String in : node.inputs()) {
      if (!in.isEmpty()) {
        used.add(in);
      }
    }
    for (Attribute a : node.attributes()) {
      switch (a) {
        case Attribute.GraphAttr g -> used.addAll(g.value().outerScopeValues());
        case Attribute.GraphsAttr gs -> gs.values().forEach(g -> used.addAll(g.outerScopeValues()));
        default -> {}
      }
    }
    return used;
  }

  /** Values this graph reads that it neither receives as input nor defines itself. */
  public Set<String> outerScopeValues() {
    Set<String> defined = new HashSet<>();
    inputs.forEach(v -> defined.add(v.name()));
    initializers.forEach(t -> defined.add(t.name()));
    nodes.forEach(n -> defined.addAll(n.outputs()));
    Set<String> outer = new java.util.LinkedHashSet<>();
    for (Node n : nodes) {
      for (String v : usedValues(n)) {
        if (!defined.contains(v)) {
          outer.add(v);
        }
      }
    }
    for (Value out : outputs) {
      if (!defined.contains(out.name())) {
        outer.add(out.name());
      }
    }
    return outer;
  }
}
