package dev.vitq.converter.check;

import dev.vitq.converter.check.CheckReport.CpuGroup;
import dev.vitq.converter.check.CheckReport.CpuNode;
import dev.vitq.converter.check.CheckReport.Kind;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.canon.Shapes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Checks which nodes of a model an execution provider would take and how they partition, before any device is at
 * hand.
 *
 * <p>It works on the graph as ONNX Runtime holds it when providers are asked ({@link LoadedGraph}: constants folded,
 * MatMul and bias fused into Gemm). A DequantizeLinear → op → QuantizeLinear group is one unit, taken or left whole, as
 * ONNX Runtime's QDQ-aware providers do. Each unit is tested against the provider's table ({@link ProviderTables});
 * {@link Partitioner} groups what it takes.
 *
 * {@snippet lang="java" :
 * CheckReport r = EpCheck.check(OnnxReader.read(path), "vit.onnx", ExecutionProvider.NNAPI, 1);
 * }
 */
public final class EpCheck {
  private EpCheck() {}

  /**
   * Checks a model against a provider.
   *
   * @param file the model's file name, for the report
   * @param batch the size to fix the inputs' symbolic first dimension to before checking (providers that need fixed
   *     shapes need it), or 0 to check the model as written
   */
  public static CheckReport check(Model model, String file, ExecutionProvider ep, int batch) {
    LoadedGraph loaded = LoadedGraph.of(model, batch);
    Graph graph = loaded.graph();
    Shapes shapes = loaded.shapes();
    Set<String> constants = loaded.constants();
    Map<Node, long[]> fused = loaded.fused();
    List<Node> live = loaded.live();
    OpTable table = ProviderTables.of(ep);
    long opset = model.opset("");
    List<Unit> units = units(graph, live, fused, table.qdqUnits());
    boolean[] supported = new boolean[units.size()];
    List<Reason> reasons = new ArrayList<>();
    for (int u = 0; u < units.size(); u++) {
      Reason r = verdict(units.get(u), table, shapes, constants, opset, fused);
      supported[u] = r == null;
      reasons.add(r);
    }
    List<List<Integer>> groups = partition(units, supported);

    int[] takenOf = new int[units.size()];
    List<CpuNode> cpuNodes = new ArrayList<>();
    for (int u = 0; u < units.size(); u++) {
      Unit unit = units.get(u);
      if (supported[u] && unit.reshapes() > 0 && table.rule("", "Reshape").isEmpty()) {
        // The Reshapes around a fused Gemm are nodes of their own: a provider without Reshape leaves them.
        takenOf[u] = unit.size() - unit.reshapes();
        cpuNodes.add(new CpuNode(name(unit.op()) + "/reshapes", "ai.onnx:Reshape", unit.reshapes(), Kind.OPERATOR,
            "operator not supported"));
      } else if (supported[u]) {
        takenOf[u] = unit.size();
      } else {
        cpuNodes.add(new CpuNode(name(unit.op()), opName(unit.op()), unit.size(), reasons.get(u).kind(),
            reasons.get(u).text()));
      }
    }
    List<Integer> sizes = groups.stream().map(g -> g.stream().mapToInt(u -> takenOf[u]).sum()).toList();
    int taken = Arrays.stream(takenOf).sum();
    int nodes = units.stream().mapToInt(Unit::size).sum();
    return new CheckReport(file, ep.cliName(), ep.label(), ep.copiesAtCuts(), batch > 0 ? batch : null, nodes,
        loaded.folded(), taken, groups.size(), sizes, grouped(cpuNodes), cpuNodes);
  }

  // ---- quantized units --------------------------------------------------------------------------------------

  /**
   * A node as the provider is asked about it: alone, or (a standard operator) with the DequantizeLinear nodes that
   * feed only it and the QuantizeLinear nodes that all of its outputs feed.
   */
  record Unit(Node op, List<Node> dqs, List<Node> qs, int reshapes) {
    Unit(Node op, List<Node> dqs, List<Node> qs) {
      this(op, dqs, qs, 0);
    }

    /** Nodes as ONNX Runtime counts them: a fused Gemm of a rank-3 product is Reshape, Gemm, Reshape. */
    int size() {
      return 1 + dqs.size() + qs.size() + reshapes;
    }

    boolean quantized() {
      return !dqs.isEmpty();
    }

    List<Node> nodes() {
      List<Node> all = new ArrayList<>(dqs);
      all.add(op);
      all.addAll(qs);
      return all;
    }
  }

  private static List<Unit> units(Graph g, List<Node> live, Map<Node, long[]> fused, boolean qdqUnits) {
    Map<String, Node> producer = new HashMap<>();
    Map<String, List<Node>> consumers = new HashMap<>();
    for (Node n : live) {
      n.outputs().forEach(o -> producer.put(o, n));
      for (String in : Graph.usedValues(n)) {
        consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
      }
    }
    Set<String> graphOutputs = new HashSet<>();
    g.outputs().forEach(v -> graphOutputs.add(v.name()));
    Map<Node, Boolean> claimed = new IdentityHashMap<>();
    List<Unit> units = new ArrayList<>();
    for (Node n : live) {
      if (fused.containsKey(n)) {
        units.add(new Unit(n, List.of(), List.of(), fused.get(n).length > 0 ? 2 : 0));
        continue;
      }
      if (isQdq(n) || !(n.domain().isEmpty() || n.domain().equals(OpTable.ONNX))) {
        // ONNX Runtime's QDQ selectors group standard operators only; DQ and Q around a contrib op stand alone.
        if (!isQdq(n)) {
          units.add(new Unit(n, List.of(), List.of()));
        }
        continue;
      }
      List<Node> dqs = new ArrayList<>();
      for (String in : new LinkedHashSet<>(n.inputs())) {
        Node p = producer.get(in);
        if (p != null && p.is("DequantizeLinear") && !graphOutputs.contains(in)
            && consumers.getOrDefault(in, List.of()).size() == 1) {
          dqs.add(p);
        }
      }
      List<Node> qs = new ArrayList<>();
      boolean allQuantized = !n.outputs().isEmpty();
      for (String out : n.outputs()) {
        if (out.isEmpty()) {
          continue;
        }
        List<Node> readers = consumers.getOrDefault(out, List.of());
        if (readers.isEmpty() || graphOutputs.contains(out)
            || !readers.stream().allMatch(r -> r.is("QuantizeLinear"))) {
          allQuantized = false;
          break;
        }
        qs.addAll(readers);
      }
      if (qdqUnits && !dqs.isEmpty() && allQuantized) {
        units.add(new Unit(n, dqs, qs));
        dqs.forEach(d -> claimed.put(d, true));
        qs.forEach(q -> claimed.put(q, true));
      } else {
        units.add(new Unit(n, List.of(), List.of()));
      }
    }
    for (Node n : live) {
      if (isQdq(n) && !claimed.containsKey(n)) {
        units.add(new Unit(n, List.of(), List.of()));
      }
    }
    // Back to graph order: the partition walk seeds its roots in that order.
    Map<Node, Integer> position = new IdentityHashMap<>();
    for (int i = 0; i < live.size(); i++) {
      position.put(live.get(i), i);
    }
    units.sort(Comparator.comparingInt(u -> position.get(u.op())));
    return units;
  }

  private static boolean isQdq(Node n) {
    return n.is("QuantizeLinear") || n.is("DequantizeLinear");
  }

  // ---- the verdict on one unit --------------------------------------------------------------------------------

  private record Reason(Kind kind, String text) {}

  private static Reason verdict(Unit unit, OpTable table, Shapes shapes, Set<String> constants, long opset,
      Map<Node, long[]> fused) {
    Node n = unit.op();
    Optional<OpRule> found = table.rule(n.domain(), n.opType());
    if (found.isEmpty()) {
      boolean contrib = !n.domain().isEmpty() && !n.domain().equals(OpTable.ONNX);
      return new Reason(Kind.OPERATOR, contrib ? "contrib operator, not supported" : "operator not supported");
    }
    if (LoadedGraph.hasSubgraph(n)) {
      return new Reason(Kind.OPERATOR, "control flow with subgraphs is not taken");
    }
    OpRule rule = found.get();
    Set<String> unitConstants = constants;
    if (unit.quantized()) {
      Reason r = quantizedTypes(unit, rule, table, shapes, constants);
      if (r != null) {
        return r;
      }
      unitConstants = new HashSet<>(constants);
      for (Node dq : unit.dqs()) {
        if (constants.contains(dq.input(0))) {
          unitConstants.add(dq.output());
        }
      }
    } else {
      Reason r = floatTypes(n, rule, table, shapes, constants);
      if (r != null) {
        return r;
      }
    }
    for (Node part : unit.nodes()) {
      for (String in : part.inputs()) {
        if (in.isEmpty() || constants.contains(in)) {
          continue;
        }
        Optional<long[]> dims = shapes.dims(in);
        if (dims.isEmpty()) {
          continue; // vitq's inference does not know the rank: give the provider the benefit of the doubt
        }
        if (dims.get().length > table.maxRank()) {
          return new Reason(Kind.RANK, "rank-" + dims.get().length + " input; takes rank " + table.maxRank()
              + " at most");
        }
        if (table.staticShapes() && Arrays.stream(dims.get()).anyMatch(d -> d < 0)) {
          return new Reason(Kind.SHAPE, "dynamic input shape; needs fixed shapes");
        }
      }
    }
    long[] flat = fused.get(n);
    Map<String, long[]> override = flat != null && flat.length > 0 ? Map.of(n.input(0), flat) : Map.of();
    NodeView view = new NodeView(n, shapes, unitConstants, opset, unit.quantized(), override);
    for (OpRule.Condition c : rule.conditions()) {
      if (!c.test().test(view)) {
        return new Reason(Kind.CONDITION, c.text());
      }
    }
    return null;
  }

  private static Reason quantizedTypes(Unit unit, OpRule rule, OpTable table, Shapes shapes, Set<String> constants) {
    if (!rule.qdq()) {
      return new Reason(Kind.TYPE, "taken in float only, not as a quantized (QDQ) unit");
    }
    Set<DType> weights = rule.qdqWeights().isEmpty() ? table.weightTypes() : rule.qdqWeights();
    for (Node dq : unit.dqs()) {
      Optional<DType> t = shapes.dtype(dq.input(0));
      boolean weight = constants.contains(dq.input(0));
      Set<DType> allowed = weight ? weights : table.activationTypes();
      if (t.isPresent() && !allowed.contains(t.get())) {
        return new Reason(Kind.TYPE, lower(t.get()) + (weight ? " weights" : " activations") + " in a QDQ unit; takes "
            + names(allowed));
      }
    }
    for (Node q : unit.qs()) {
      Optional<DType> t = shapes.dtype(q.output());
      if (t.isPresent() && !table.activationTypes().contains(t.get())) {
        return new Reason(Kind.TYPE, lower(t.get()) + " activations in a QDQ unit; takes "
            + names(table.activationTypes()));
      }
    }
    return null;
  }

  private static Reason floatTypes(Node n, OpRule rule, OpTable table, Shapes shapes, Set<String> constants) {
    if (n.is("QuantizeLinear")) {
      Optional<DType> t = shapes.dtype(n.output());
      if (t.isPresent() && !table.activationTypes().contains(t.get())) {
        return new Reason(Kind.TYPE, "quantizes to " + lower(t.get()) + "; takes " + names(table.activationTypes()));
      }
      return null;
    }
    if (n.is("DequantizeLinear")) {
      Optional<DType> t = shapes.dtype(n.input(0));
      Set<DType> allowed = constants.contains(n.input(0)) ? table.weightTypes() : table.activationTypes();
      if (t.isPresent() && !allowed.contains(t.get())) {
        return new Reason(Kind.TYPE, "dequantizes " + lower(t.get()) + "; takes " + names(allowed));
      }
      return null;
    }
    Optional<DType> t = shapes.dtype(n.input(0));
    if (!rule.types().isEmpty() && t.isPresent() && !rule.types().contains(t.get())) {
      return new Reason(Kind.TYPE, lower(t.get()) + " input; takes " + names(rule.types()));
    }
    return null;
  }

  private static String lower(DType t) {
    return t.name().toLowerCase(java.util.Locale.ROOT);
  }

  private static String names(Set<DType> types) {
    List<String> n = types.stream().sorted().map(EpCheck::lower).toList();
    return n.isEmpty() ? "none" : String.join("/", n);
  }

  // ---- partitions and the report ------------------------------------------------------------------------------

  private static List<List<Integer>> partition(List<Unit> units, boolean[] supported) {
    Map<String, Integer> unitOf = new HashMap<>();
    for (int u = 0; u < units.size(); u++) {
      for (Node n : units.get(u).nodes()) {
        for (String o : n.outputs()) {
          if (!o.isEmpty()) {
            unitOf.put(o, u);
          }
        }
      }
    }
    List<List<Integer>> successors = new ArrayList<>();
    int[] inDegree = new int[units.size()];
    for (int u = 0; u < units.size(); u++) {
      successors.add(new ArrayList<>());
    }
    for (int u = 0; u < units.size(); u++) {
      Set<Integer> from = new LinkedHashSet<>();
      for (Node n : units.get(u).nodes()) {
        for (String in : Graph.usedValues(n)) {
          Integer p = unitOf.get(in);
          if (p != null && p != u) {
            from.add(p);
          }
        }
      }
      inDegree[u] = from.size();
      for (int p : from) {
        successors.get(p).add(u);
      }
    }
    List<Integer> roots = new ArrayList<>();
    for (int u = 0; u < units.size(); u++) {
      if (inDegree[u] == 0) {
        roots.add(u);
      }
    }
    return Partitioner.partitions(successors, inDegree, roots, supported);
  }

  private static List<CpuGroup> grouped(List<CpuNode> cpuNodes) {
    Map<List<Object>, int[]> counts = new LinkedHashMap<>();
    Map<List<Object>, String> example = new HashMap<>();
    for (CpuNode c : cpuNodes) {
      List<Object> key = List.of(c.op(), c.kind(), c.reason());
      counts.computeIfAbsent(key, k -> new int[1])[0] += c.nodes();
      example.putIfAbsent(key, c.name());
    }
    List<CpuGroup> out = new ArrayList<>();
    counts.forEach((k, v) -> out.add(new CpuGroup((String) k.get(0), (Kind) k.get(1), (String) k.get(2), v[0],
        example.get(k))));
    out.sort(Comparator.comparingInt(CpuGroup::nodes).reversed());
    return out;
  }

  private static String name(Node n) {
    return n.name().isEmpty() ? n.output() : n.name();
  }

  private static String opName(Node n) {
    return (n.domain().isEmpty() ? OpTable.ONNX : n.domain()) + ":" + n.opType();
  }
}
