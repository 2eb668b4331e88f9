package dev.vitq.models.canon;

import dev.vitq.models.Attribute;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Removes what no graph output depends on: nodes, initializers and value declarations, in subgraphs too; for a whole
 * model also the operator set imports no node uses. The canonicaliser runs it after its folds (the shape arithmetic
 * of a folded reshape target, say); the deploy passes run it last, so a shipped model holds nothing ONNX Runtime
 * would remove with a warning at every load ("Removing initializer ... It is not used by any node").
 *
 * <p>It changes no output: graph inputs stay (they are the interface), and so does an initializer that is also a
 * graph input (a default the caller may override).
 *
 * {@snippet lang="java" :
 * Model clean = DeadCode.apply(deployed); // the same outputs, nothing unread
 * }
 */
public final class DeadCode {
  private DeadCode() {}

  /**
   * The model with its graph cleaned ({@link #apply(Graph)}) and the operator set imports of domains no node uses
   * dropped; the model itself when nothing is dead. The default domain's import always stays (the ONNX checker
   * requires it), and every import stays when the model carries more than the IR models (local functions, whose
   * nodes may use any import).
   */
  public static Model apply(Model model) {
    Graph g = apply(model.graph());
    Model out = g == model.graph() ? model : model.withGraph(g);
    if (!model.extras().isEmpty()) {
      return out;
    }
    Set<String> used = new HashSet<>();
    domains(g, used);
    List<OpsetId> opsets = model.opsets().stream().filter(o -> isDefault(o.domain()) || used.contains(o.domain()))
        .toList();
    if (opsets.size() == model.opsets().size()) {
      return out;
    }
    return new Model(out.irVersion(), opsets, out.producerName(), out.producerVersion(), out.domain(),
        out.modelVersion(), out.docString(), out.metadata(), out.graph(), out.extras());
  }

  /** The graph without what no output depends on; the graph itself when nothing is dead. */
  public static Graph apply(Graph graph) {
    // Subgraphs first: what they stop reading from the outer scope may then be dead here.
    Graph g = withCleanSubgraphs(graph);
    Map<String, Node> producer = new HashMap<>();
    for (Node n : g.nodes()) {
      n.outputs().forEach(o -> producer.putIfAbsent(o, n));
    }
    Set<String> live = new HashSet<>();
    Set<Node> kept = Collections.newSetFromMap(new IdentityHashMap<>());
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

  /** The graph with every subgraph attribute of its nodes cleaned; the graph itself when none changes. */
  private static Graph withCleanSubgraphs(Graph g) {
    List<Node> nodes = new ArrayList<>(g.nodes().size());
    boolean changed = false;
    for (Node n : g.nodes()) {
      List<Attribute> attrs = new ArrayList<>(n.attributes().size());
      boolean cleaned = false;
      for (Attribute a : n.attributes()) {
        Attribute clean = switch (a) {
          case Attribute.GraphAttr ga -> {
            Graph sub = apply(ga.value());
            yield sub == ga.value() ? a : new Attribute.GraphAttr(ga.name(), sub, ga.extras());
          }
          case Attribute.GraphsAttr gs -> {
            List<Graph> subs = gs.values().stream().map(DeadCode::apply).toList();
            boolean same = true;
            for (int i = 0; i < subs.size(); i++) {
              same &= subs.get(i) == gs.values().get(i);
            }
            yield same ? a : new Attribute.GraphsAttr(gs.name(), subs, gs.extras());
          }
          default -> a;
        };
        cleaned |= clean != a;
        attrs.add(clean);
      }
      nodes.add(cleaned ? new Node(n.name(), n.opType(), n.domain(), n.inputs(), n.outputs(), attrs, n.extras()) : n);
      changed |= cleaned;
    }
    return changed ? g.withNodes(nodes) : g;
  }

  private static void domains(Graph g, Set<String> into) {
    for (Node n : g.nodes()) {
      into.add(n.domain());
      for (Attribute a : n.attributes()) {
        switch (a) {
          case Attribute.GraphAttr ga -> domains(ga.value(), into);
          case Attribute.GraphsAttr gs -> gs.values().forEach(s -> domains(s, into));
          default -> {}
        }
      }
    }
  }

  private static boolean isDefault(String domain) {
    return domain.isEmpty() || domain.equals("ai.onnx");
  }
}
