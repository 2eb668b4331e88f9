package dev.vitq.models.canon;

import dev.vitq.models.Graph;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Removes the nodes, initializers and value declarations no graph output depends on: what constant folding and the
 * simplifications leave behind (the shape arithmetic of a folded reshape target, say).
 */
final class DeadCode {
  private DeadCode() {}

  static Graph apply(Graph g) {
    Map<String, Node> producer = new HashMap<>();
    for (Node n : g.nodes()) {
      n.outputs().forEach(o -> producer.putIfAbsent(o, n));
    }
    Set<String> live = new HashSet<>();
    Set<Node> kept = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    ArrayDeque<String> work = new ArrayDeque<>();
    g.outputs().forEach(v -> work.push(v.name()));
    while (!work.isEmpty()) {
      String v = work.pop();
      if (v.isEmpty() || !live.add(v)) {
        continue;
      }
      Node n = producer.get(v);
      if (n != null && kept.add(n)) {
        work.addAll(Graph.usedValues(n));
      }
    }
    List<Node> nodes = g.nodes().stream().filter(kept::contains).toList();
    Set<String> inputs = new HashSet<>();
    g.inputs().forEach(v -> inputs.add(v.name()));
    // An initializer that is also a graph input is a default the caller may override: it stays with its input.
    List<Tensor> inits = g.initializers().stream().filter(t -> live.contains(t.name()) || inputs.contains(t.name()))
        .toList();
    Set<String> present = new HashSet<>(live);
    nodes.forEach(n -> present.addAll(n.outputs()));
    List<Value> info = g.valueInfo().stream().filter(v -> present.contains(v.name())).toList();
    if (nodes.size() == g.nodes().size() && inits.size() == g.initializers().size()
        && info.size() == g.valueInfo().size()) {
      return g;
    }
    return g.withNodes(nodes).withInitializers(inits).withValueInfo(info);
  }
}
