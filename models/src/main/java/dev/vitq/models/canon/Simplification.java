package dev.vitq.models.canon;

import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Rewrites that remove exporter noise without changing what the model computes:
 *
 * <ul>
 *   <li>{@code Identity}, {@code Dropout} in inference mode or with ratio 0, and a {@code Cast} to the type the value
 *       already has pass their input on;
 *   <li>{@code Where(IsNaN(p), 0, p)}, the guard the torch.export exporter writes after an attention softmax, passes
 *       {@code p} on (a softmax of finite scores is never NaN);
 *   <li>a scale split across queries and keys, {@code MatMul(q * a, k * b)} with scalar {@code a} and {@code b} (the
 *       PyTorch exporters' scaled-dot-product attention multiplies both by {@code sqrt(scale)}), becomes
 *       {@code MatMul(q, k) * (a * b)}.
 * </ul>
 *
 * A value that is a graph output is never bypassed.
 */
final class Simplification {
  private Simplification() {}

  static Graph apply(Graph g, Map<String, Facts> facts) {
    GraphIndex idx = GraphIndex.of(g);
    Set<String> graphOutputs = new HashSet<>();
    g.outputs().forEach(v -> graphOutputs.add(v.name()));
    Map<String, String> alias = new HashMap<>();
    Set<Node> dropped = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    for (Node n : g.nodes()) {
      if (n.outputs().isEmpty() || graphOutputs.contains(n.output())) {
        continue;
      }
      String passed = passThrough(n, idx, facts);
      if (passed != null && !passed.isEmpty()) {
        alias.put(n.output(), passed);
        dropped.add(n);
      }
    }
    GraphBuilder b = GraphBuilder.around(g);
    Map<Node, List<Node>> replaced = new java.util.IdentityHashMap<>();
    for (Node n : g.nodes()) {
      if (n.is("MatMul") && !dropped.contains(n)) {
        List<Node> r = splitScale(n, idx, alias, b, graphOutputs);
        if (r != null) {
          replaced.put(n, r);
          dropped.add(idx.producer(resolve(n.input(0), alias)).orElseThrow());
          dropped.add(idx.producer(resolve(n.input(1), alias)).orElseThrow());
        }
      }
    }
    if (dropped.isEmpty() && replaced.isEmpty()) {
      return g;
    }
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      if (dropped.contains(n)) {
        continue;
      }
      for (Node m : replaced.getOrDefault(n, List.of(n))) {
        nodes.add(rewire(m, alias));
      }
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(b.initializers());
    return g.withNodes(nodes).withInitializers(inits);
  }

  /** The value a no-op node passes on, or null. */
  private static String passThrough(Node n, GraphIndex idx, Map<String, Facts> facts) {
    if (n.is("Identity")) {
      return n.input(0);
    }
    if (n.is("Dropout")) {
      boolean maskUsed = n.outputs().size() > 1 && !n.outputs().get(1).isEmpty()
          && !idx.consumers(n.outputs().get(1)).isEmpty();
      boolean training = !n.input(2).isEmpty()
          && !idx.longs(n.input(2)).map(v -> v.length == 1 && v[0] == 0).orElse(false);
      // A ratio of 0 drops nothing even in training mode (torchvision's Swin calls F.dropout(p=0.0) so).
      boolean dropsNothing = !n.input(1).isEmpty() && idx.scalar(n.input(1)).map(r -> r == 0f).orElse(false);
      return maskUsed || (training && !dropsNothing) ? null : n.input(0);
    }
    if (n.is("Cast")) {
      Facts in = facts.get(n.input(0));
      return in != null && in.dtype() != null && in.dtype().code() == n.intAttr("to", -1) ? n.input(0) : null;
    }
    if (n.is("Where")) {
      Node guard = idx.producer(n.input(0), "IsNaN").orElse(null);
      boolean zero = idx.constant(n.input(1)).map(t -> allZero(t)).orElse(false);
      if (guard != null && zero && guard.input(0).equals(n.input(2))) {
        return n.input(2);
      }
    }
    return null;
  }

  private static boolean allZero(Tensor t) {
    if (t.elementCount() > ShapeMath.MAX_CONTENT) {
      return false;
    }
    for (float v : t.floats()) {
      if (v != 0) {
        return false;
      }
    }
    return true;
  }

  /** {@code MatMul(q * a, k * b)} as {@code MatMul(q, k)} then {@code * (a * b)}, or null. */
  private static List<Node> splitScale(Node mm, GraphIndex idx, Map<String, String> alias, GraphBuilder b,
      Set<String> graphOutputs) {
    Optional<ScaledInput> left = scaled(resolve(mm.input(0), alias), idx, graphOutputs);
    Optional<ScaledInput> right = scaled(resolve(mm.input(1), alias), idx, graphOutputs);
    if (left.isEmpty() || right.isEmpty() || left.get().mul() == right.get().mul()) {
      return null;
    }
    float scale = left.get().factor() * right.get().factor();
    String product = b.fresh(mm.output() + "_unscaled");
    String factor = b.initializer(mm.output() + "_scale",
        Tensor.ofFloats("", List.of(), new float[] {scale}));
    Node matmul = mm.withInputs(List.of(left.get().input(), right.get().input())).withOutputs(List.of(product));
    Node mul = Node.of(b.fresh(mm.name().isEmpty() ? "Mul" : mm.name() + "_scale"), "Mul", List.of(product, factor),
        List.of(mm.output()));
    return List.of(matmul, mul);
  }

  private record ScaledInput(Node mul, String input, float factor) {}

  /** A value computed as {@code x * c} (c a scalar constant) read by nothing else. */
  private static Optional<ScaledInput> scaled(String v, GraphIndex idx, Set<String> graphOutputs) {
    Node mul = idx.producer(v, "Mul").orElse(null);
    if (mul == null || idx.consumers(v).size() != 1 || graphOutputs.contains(v)) {
      return Optional.empty();
    }
    for (int side = 0; side < 2; side++) {
      Optional<Float> c = idx.scalar(mul.input(side));
      if (c.isPresent() && idx.constant(mul.input(side)).orElseThrow().dtype() == dev.vitq.models.DType.FLOAT
          && !idx.isConstant(mul.input(1 - side))) {
        return Optional.of(new ScaledInput(mul, mul.input(1 - side), c.get()));
      }
    }
    return Optional.empty();
  }

  private static String resolve(String v, Map<String, String> alias) {
    String cur = v;
    for (int i = 0; i < 64 && alias.containsKey(cur); i++) {
      cur = alias.get(cur);
    }
    return cur;
  }

  private static Node rewire(Node n, Map<String, String> alias) {
    List<String> in = new ArrayList<>(n.inputs().size());
    boolean changed = false;
    for (String v : n.inputs()) {
      String r = v.isEmpty() ? v : resolve(v, alias);
      changed |= !r.equals(v);
      in.add(r);
    }
    return changed ? n.withInputs(in) : n;
  }
}
