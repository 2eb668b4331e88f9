package dev.vitq.models;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What a model carries that nothing uses: initializers no node reads (ONNX Runtime removes each with a warning at
 * load), value declarations of values nothing produces or reads, and operator set imports of domains no node is in.
 * A test checker, written apart from the pass that removes them ({@code canon.DeadCode}) so it checks that pass
 * rather than repeating it.
 */
public final class UnusedParts {
  private UnusedParts() {}

  /** One line per unused part of {@code model}, with its graph; empty when everything is used. */
  public static List<String> of(Model model) {
    List<String> found = new ArrayList<>();
    Set<String> domains = new HashSet<>();
    check(model.graph(), "main graph", found, domains);
    for (OpsetId o : model.opsets()) {
      boolean isDefault = o.domain().isEmpty() || o.domain().equals("ai.onnx");
      if (!isDefault && !domains.contains(o.domain())) {
        found.add("opset import '" + o.domain() + "' v" + o.version() + " has no node");
      }
    }
    return found;
  }

  private static void check(Graph g, String where, List<String> found, Set<String> domains) {
    Set<String> read = new HashSet<>();
    Set<String> produced = new HashSet<>();
    for (Node n : g.nodes()) {
      domains.add(n.domain());
      read.addAll(n.inputs());
      produced.addAll(n.outputs());
      for (Attribute a : n.attributes()) {
        List<Graph> subs = switch (a) {
          case Attribute.GraphAttr ga -> List.of(ga.value());
          case Attribute.GraphsAttr gs -> gs.values();
          default -> List.of();
        };
        for (Graph s : subs) {
          // A subgraph may read any value of this scope by name.
          read.addAll(s.outerScopeValues());
          check(s, where + " > " + n.opType() + "." + a.name(), found, domains);
        }
      }
    }
    g.outputs().forEach(v -> read.add(v.name()));
    Set<String> inputs = new HashSet<>();
    g.inputs().forEach(v -> inputs.add(v.name()));
    for (Tensor t : g.initializers()) {
      if (!read.contains(t.name()) && !inputs.contains(t.name())) {
        found.add(where + ": initializer '" + t.name() + "' is read by no node");
      }
    }
    for (Value v : g.valueInfo()) {
      if (!read.contains(v.name()) && !produced.contains(v.name())) {
        found.add(where + ": value_info '" + v.name() + "' names a value nothing produces or reads");
      }
    }
  }
}
