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
    return after(model, boundary, model.graph().outputs().stream().filter(v -> v.name().equals(output)).toList(),
        forbidden);
  }

  /**
   * The model computing {@code outputs} (declared as given) from {@code boundary} (and the other graph inputs they
   * still need), or empty when they need one of {@code forbidden}.
   */
  public static Optional<Model> after(Model model, String boundary, List<Value> outputs, Set<String> forbidden) {
    Graph g = model.graph();
    Set<String> seen = reach(g, outputs.stream().map(Value::name).toList(), boundary);
    if (seen.stream().anyMatch(forbidden::contains)) {
      return Optional.empty();
    }
    List<Value> inputs = new ArrayList<>();
    inputs.add(Value.of(boundary, new TensorType(DType.FLOAT, null)));
    g.inputs().stream().filter(v -> seen.contains(v.name()) && !v.name().equals(boundary)).forEach(inputs::add);
    return Optional.of(keep(model, seen, inputs, outputs));
  }

  /**
   * The model computing {@code outputs} (declared as given) from the graph inputs they need: only the nodes,
   * initializers and inputs on their way.
   */
  public static Model before(Model model, List<Value> outputs) {
    Graph g = model.graph();
    Set<String> seen = reach(g, outputs.stream().map(Value::name).toList(), null);
    return keep(model, seen, g.inputs().stream().filter(v -> seen.contains(v.name())).toList(), outputs);
  }

  /** The values {@code outputs} are computed from, walking back through producers and stopping at {@code stop}. */
  private static Set<String> reach(Graph g, List<String> outputs, String stop) {
    Map<String, Node> producer = new HashMap<>();
    for (Node n : g.nodes()) {
      n.outputs().forEach(o -> producer.put(o, n));
    }
    Set<String> seen = new HashSet<>();
    Set<Node> visited = new HashSet<>();
    Deque<String> work = new ArrayDeque<>(outputs);
    while (!work.isEmpty()) {
      String v = work.pop();
      if (v.isEmpty() || !seen.add(v) || v.equals(stop)) {
        continue;
      }
      Node n = producer.get(v);
      if (n != null && visited.add(n)) {
        work.addAll(Graph.usedValues(n));
      }
    }
    return seen;
  }

  /** The model with the nodes producing, and the initializers and declarations of, the values in {@code seen}. */
  private static Model keep(Model model, Set<String> seen, List<Value> inputs, List<Value> outputs) {
    Graph g = model.graph();
    // A node is kept when one of its outputs is needed, except the boundary's producer (the walk stopped there).
    Set<String> stopped = new HashSet<>();
    inputs.forEach(v -> stopped.add(v.name()));
    List<Node> nodes = g.nodes().stream()
        .filter(n -> n.outputs().stream().anyMatch(o -> seen.contains(o) && !stopped.contains(o))).toList();
    List<Tensor> initializers = g.initializers().stream().filter(t -> seen.contains(t.name())).toList();
    List<Value> info = g.valueInfo().stream().filter(v -> seen.contains(v.name())).toList();
    return model.withGraph(g.withNodes(nodes).withInitializers(initializers).withInputs(inputs).withOutputs(outputs)
        .withValueInfo(info));
  }
}
