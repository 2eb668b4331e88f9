package dev.vitq.models;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Lookups derived from a graph: which node produces a value, which nodes consume it, and which values are constants.
 * Built once per graph; the graph is immutable, so the index never goes stale.
 */
public final class GraphIndex {
  private final Graph graph;
  private final Map<String, Node> producers = new HashMap<>();
  private final Map<String, List<Node>> consumers = new HashMap<>();
  private final Map<String, Tensor> initializers = new HashMap<>();
  private final Map<String, Value> declared = new HashMap<>();

  private GraphIndex(Graph graph) {
    this.graph = graph;
    for (Node n : graph.nodes()) {
      for (String out : n.outputs()) {
        if (!out.isEmpty()) {
          producers.putIfAbsent(out, n);
        }
      }
      for (String in : Graph.usedValues(n)) {
        consumers.computeIfAbsent(in, k -> new ArrayList<>(2)).add(n);
      }
    }
    for (Tensor t : graph.initializers()) {
      initializers.putIfAbsent(t.name(), t);
    }
    for (List<Value> values : List.of(graph.valueInfo(), graph.outputs(), graph.inputs())) {
      for (Value v : values) {
        declared.put(v.name(), v);
      }
    }
  }

  /** The index of a graph. */
  public static GraphIndex of(Graph graph) {
    return new GraphIndex(graph);
  }

  public Graph graph() {
    return graph;
  }

  /** The node producing the value, if a node does. */
  public Optional<Node> producer(String value) {
    return Optional.ofNullable(producers.get(value));
  }

  /** The node producing the value when it has {@code opType}, else empty. */
  public Optional<Node> producer(String value, String opType) {
    return producer(value).filter(n -> n.is(opType));
  }

  /** The nodes reading the value, in graph order. */
  public List<Node> consumers(String value) {
    return consumers.getOrDefault(value, List.of());
  }

  /** Whether the value is a graph output. */
  public boolean isGraphOutput(String value) {
    return graph.outputs().stream().anyMatch(v -> v.name().equals(value));
  }

  /** The initializer of that name, if any. */
  public Optional<Tensor> initializer(String value) {
    return Optional.ofNullable(initializers.get(value));
  }

  /** The declared type of a value (input, output or value_info), if any. */
  public Optional<TensorType> declaredType(String value) {
    Value v = declared.get(value);
    return v == null ? Optional.empty() : Optional.ofNullable(v.type());
  }

  /**
   * The constant tensor behind a value: an initializer that is not also a graph input, or the output of a
   * {@code Constant} node (any of its value forms), looked through {@code Identity}.
   */
  public Optional<Tensor> constant(String value) {
    Tensor init = initializers.get(value);
    if (init != null) {
      return graph.input(value).isPresent() ? Optional.empty() : Optional.of(init);
    }
    Node p = producers.get(value);
    if (p == null) {
      return Optional.empty();
    }
    if (p.is("Identity")) {
      return constant(p.input(0));
    }
    if (!p.is("Constant") || p.attributes().size() != 1) {
      return Optional.empty();
    }
    return Optional.ofNullable(
        switch (p.attributes().get(0)) {
          case Attribute.TensorAttr t when t.name().equals("value") -> t.value();
          case Attribute.FloatAttr f when f.name().equals("value_float") ->
              Tensor.ofFloats(value, List.of(), new float[] {f.value()});
          case Attribute.IntAttr i when i.name().equals("value_int") ->
              Tensor.ofLongs(value, List.of(), new long[] {i.value()});
          case Attribute.FloatsAttr f when f.name().equals("value_floats") -> {
            float[] v = new float[f.values().size()];
            for (int k = 0; k < v.length; k++) {
              v[k] = f.values().get(k);
            }
            yield Tensor.ofFloats(value, List.of((long) v.length), v);
          }
          case Attribute.IntsAttr i when i.name().equals("value_ints") ->
              Tensor.ofLongs(value, List.of((long) i.values().size()),
                  i.values().stream().mapToLong(Long::longValue).toArray());
          default -> null;
        });
  }

  /** Whether the value is a constant (see {@link #constant}). */
  public boolean isConstant(String value) {
    return constant(value).isPresent();
  }

  /** The single float a constant holds (any shape with one element), if it is one. */
  public Optional<Float> scalar(String value) {
    return constant(value)
        .filter(t -> t.elementCount() == 1 && t.dtype() != DType.STRING)
        .map(t -> t.floats()[0]);
  }

  /** The integers a constant holds, if it is an integer constant. */
  public Optional<long[]> longs(String value) {
    return constant(value)
        .filter(t -> switch (t.dtype()) {
          case INT64, INT32, INT16, INT8, UINT8, UINT16, UINT32, UINT64 -> true;
          default -> false;
        })
        .map(Tensor::longs);
  }
}
