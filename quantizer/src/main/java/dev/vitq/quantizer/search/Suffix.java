package dev.vitq.quantizer.search;

import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
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
 * A graph pass: the part of a model after one of its values, with that value as the graph input. A candidate for
 * block i runs only blocks i..N this way, from block i's cached input.
 */
final class Suffix {
  private Suffix() {}

  /**
   * The model computing {@code output} from {@code boundary} (and the other graph inputs it still needs), or empty
   * when it needs one of {@code forbidden} (a shape taken from the image, say), so the cut is not clean.
   */
  static Optional<Model> of(Model model, String boundary, String output, Set<String> forbidden) {
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
}
