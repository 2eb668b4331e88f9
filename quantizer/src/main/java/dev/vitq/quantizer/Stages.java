package dev.vitq.quantizer;

import dev.vitq.models.Graph;
import dev.vitq.models.Node;
import dev.vitq.models.Value;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model's nodes cut into consecutive stages where one tensor alone carries everything the later nodes read (a ViT's
 * residual stream between blocks), so the layer inputs of one stage can be gathered by running only that stage on the
 * previous stage's output. Found from the graph alone: a recognised structure is not needed, and a graph without such
 * a point is one stage.
 */
final class Stages {
  /** Operators whose output may be a cut: float arithmetic and layout, not shape or index computations. */
  private static final Set<String> CUT_OPS = Set.of("Add", "Mul", "MatMul", "Gemm", "Conv", "LayerNormalization",
      "Reshape", "Transpose", "Flatten", "Concat");

  private Stages() {}

  /**
   * One stage.
   *
   * @param in what it reads: the image input for the first stage, else the previous stage's {@code out}
   * @param out the one tensor carrying everything later stages read, or null for the last stage
   * @param tensors the layer inputs it computes, in the order asked
   */
  record Stage(String in, String out, List<String> tensors) {}

  /**
   * The stages of a topologically sorted graph: each as long as its layer inputs' cost stays within {@code budget},
   * and never shorter than the span between two cuts (so a stage may exceed it when no cut lies between its layers).
   *
   * @param costs each layer input and what gathering its moments costs
   */
  static List<Stage> of(Graph sorted, String input, Map<String, Long> costs, long budget) {
    List<Node> nodes = sorted.nodes();
    List<Integer> cuts = cuts(sorted);
    Map<String, Integer> producedAt = new HashMap<>();
    for (int p = 0; p < nodes.size(); p++) {
      for (String o : nodes.get(p).outputs()) {
        producedAt.put(o, p);
      }
    }
    // The tensors of each span between cuts: span k ends with the node at cuts[k] (the last span with the graph).
    List<List<String>> spans = new ArrayList<>();
    for (int k = 0; k <= cuts.size(); k++) {
      spans.add(new ArrayList<>());
    }
    for (String t : costs.keySet()) {
      int at = producedAt.getOrDefault(t, -1);
      int span = 0;
      while (span < cuts.size() && cuts.get(span) < at) {
        span++;
      }
      spans.get(span).add(t);
    }
    List<Stage> stages = new ArrayList<>();
    String in = input;
    List<String> current = new ArrayList<>();
    long used = 0;
    for (int k = 0; k <= cuts.size(); k++) {
      long cost = spans.get(k).stream().mapToLong(costs::get).sum();
      if (used > 0 && cost > 0 && used + cost > budget) {
        String out = nodes.get(cuts.get(k - 1)).outputs().get(0);
        stages.add(new Stage(in, out, ordered(current, costs)));
        in = out;
        current = new ArrayList<>();
        used = 0;
      }
      current.addAll(spans.get(k));
      used += cost;
    }
    stages.add(new Stage(in, null, ordered(current, costs)));
    return stages;
  }

  private static List<String> ordered(List<String> tensors, Map<String, Long> costs) {
    Set<String> in = new HashSet<>(tensors);
    return costs.keySet().stream().filter(in::contains).toList();
  }

  /**
   * Positions of the nodes whose (first, float) output is, right after them, the only value computed from the graph's
   * inputs that a later node or the graph's outputs still read. Values computed from initializers alone are
   * constants, which any stage recomputes.
   */
  static List<Integer> cuts(Graph sorted) {
    List<Node> nodes = sorted.nodes();
    Set<String> initializers = new HashSet<>();
    sorted.initializers().forEach(t -> initializers.add(t.name()));
    Set<String> dynamic = new HashSet<>();
    for (Value v : sorted.inputs()) {
      if (!initializers.contains(v.name())) {
        dynamic.add(v.name());
      }
    }
    Map<String, Integer> lastUse = new HashMap<>();
    for (int p = 0; p < nodes.size(); p++) {
      Node n = nodes.get(p);
      Set<String> used = Graph.usedValues(n);
      for (String v : used) {
        lastUse.put(v, p);
      }
      if (used.stream().anyMatch(dynamic::contains)) {
        dynamic.addAll(n.outputs());
      }
    }
    for (Value v : sorted.outputs()) {
      lastUse.put(v.name(), Integer.MAX_VALUE);
    }
    // Live dynamic values after each node, and which of them dies where.
    Map<Integer, List<String>> dying = new LinkedHashMap<>();
    Set<String> live = new LinkedHashSet<>();
    for (Value v : sorted.inputs()) {
      if (dynamic.contains(v.name()) && lastUse.containsKey(v.name())) {
        live.add(v.name());
        dying.computeIfAbsent(lastUse.get(v.name()), k -> new ArrayList<>()).add(v.name());
      }
    }
    List<Integer> cuts = new ArrayList<>();
    for (int p = 0; p < nodes.size(); p++) {
      Node n = nodes.get(p);
      for (String o : n.outputs()) {
        if (dynamic.contains(o) && !o.isEmpty() && lastUse.getOrDefault(o, p) > p) {
          live.add(o);
          dying.computeIfAbsent(lastUse.get(o), k -> new ArrayList<>()).add(o);
        }
      }
      dying.getOrDefault(p, List.of()).forEach(live::remove);
      if (live.size() == 1 && n.outputs().size() == 1 && live.contains(n.output()) && CUT_OPS.stream().anyMatch(n::is)
          && lastUse.get(n.output()) != Integer.MAX_VALUE) {
        cuts.add(p);
      }
    }
    return cuts;
  }
}
