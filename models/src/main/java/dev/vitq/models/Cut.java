package dev.vitq.models;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Graph passes that cut a model at one of its values: the part before it (a device encoder, say) and the part after
 * it (a cloud decoder, or the blocks a scale search re-runs).
 */
public final class Cut {
  private Cut() {}

  /**
   * The model computing {@code output} from {@code boundary} (and the other graph inputs it still needs), or empty
   * when it needs one of {@code forbidden} (a shape taken from the image, say), so the cut is not clean.
   */
  public static Optional<Model> after(Model model, String boundary, String output, Set<String> forbidden) {
    Graph g = model.graph();
    Map<String, Node> producer = new HashMap<>();
    for (Node n : g.nodes()) {
      n.outputs().forEach(o -> producer.put(o, n));
    }
    Set<Node> needed = new HashSet<>();
    Set<String> seen = new HashSet<>();
    Deque<String> work = new ArrayDeque<>(List.of(output));
    while (!work.isEmpty()) {
      String v = work.pop();
      if (!seen.add(v) || v.equals(boundary) || v.isEmpty()) {
        continue;
      }
      if (forbidden.contains(v)) {
        return Optional.empty();
      }
      Node n = producer.get(v);
      if (n != null && needed.add(n)) {
        work.addAll(Graph.usedValues(n));
      }
    }
    List<Node> nodes = g.nodes().stream().filter(needed::contains).toList();
    List<Tensor> initializers = g.initializers().stream().filter(t -> seen.contains(t.name())).toList();
    List<Value> inputs = new ArrayList<>();
    inputs.add(Value.of(boundary, new TensorType(DType.FLOAT, null)));
    g.inputs().stream().filter(v -> seen.contains(v.name()) && !v.name().equals(boundary)).forEach(inputs::add);
    List<Value> outputs = g.outputs().stream().filter(v -> v.name().equals(output)).toList();
    List<Value> info = g.valueInfo().stream().filter(v -> seen.contains(v.name())).toList();
    return Optional.of(model.withGraph(g.withNodes(nodes).withInitializers(initializers).withInputs(inputs)
        .withOutputs(outputs).withValueInfo(info)));
  }

  /**
   * The model computing {@code outputs} (declared with {@code types}) from the graph inputs they need: only the
   * nodes, initializers and inputs on their way.
   */
  public static Model before(Model model, List<Value> outputs) {
    Graph g = model.graph();
    Map<String, Node> producer = new HashMap<>();
    for (Node n : g.nodes()) {
      n.outputs().forEach(o -> producer.put(o, n));
    }
    Set<Node> needed = new HashSet<>();
    Set<String> seen = new HashSet<>();
    Deque<String> work = new ArrayDeque<>();
    outputs.forEach(v -> work.add(v.name()));
    while (!work.isEmpty()) {
      String v = work.pop();
      if (!seen.add(v) || v.isEmpty()) {
        continue;
      }
      Node n = producer.get(v);
      if (n != null && needed.add(n)) {
        work.addAll(Graph.usedValues(n));
      }
    }
    List<Node> nodes = g.nodes().stream().filter(needed::contains).toList();
    List<Tensor> initializers = g.initializers().stream().filter(t -> seen.contains(t.name())).toList();
    List<Value> inputs = g.inputs().stream().filter(v -> seen.contains(v.name())).toList();
    List<Value> info = g.valueInfo().stream().filter(v -> seen.contains(v.name())).toList();
    return model.withGraph(g.withNodes(nodes).withInitializers(initializers).withInputs(inputs).withOutputs(outputs)
        .withValueInfo(info));
  }
}
