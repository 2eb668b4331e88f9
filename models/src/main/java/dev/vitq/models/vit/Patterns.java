package dev.vitq.models.vit;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.vit.VitStructure.Activation;
import dev.vitq.models.vit.VitStructure.Linear;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Matchers for the layers a ViT is made of, each recognising what the nodes compute rather than one exporter's
 * spelling of it.
 */
final class Patterns {
  private static final Set<String> SHAPE_OPS = Set.of("Shape", "Size");
  private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div", "Pow");

  private final GraphIndex idx;

  Patterns(GraphIndex idx) {
    this.idx = idx;
  }

  GraphIndex index() {
    return idx;
  }

  /** Consumers that compute with the value, leaving out those that only read its shape. */
  List<Node> dataConsumers(String value) {
    return idx.consumers(value).stream().filter(n -> !SHAPE_OPS.contains(n.opType())).toList();
  }

  /** The input of a two-input node that is not {@code value}, or null. */
  static String other(Node n, String value) {
    if (n.inputs().size() != 2) {
      return null;
    }
    return n.input(0).equals(value) ? n.input(1) : n.input(1).equals(value) ? n.input(0) : null;
  }

  // ---- linear layers -----------------------------------------------------------------------------------------

  /** The linear layer that reads {@code x}, if one does. */
  Optional<Linear> linearFrom(String x) {
    return linearsFrom(x).stream().findFirst();
  }

  /**
   * All linear layers reading {@code x}, directly or after a change of layout (nn.MultiheadAttention transposes its
   * input to sequence-first before projecting it).
   */
  List<Linear> linearsFrom(String x) {
    List<Linear> found = new ArrayList<>();
    collectLinears(x, found, 0);
    return found;
  }

  private void collectLinears(String x, List<Linear> found, int depth) {
    for (Node c : dataConsumers(x)) {
      Optional<Linear> l = Optional.empty();
      if ((c.is("MatMul") || c.is("Gemm")) && c.input(0).equals(x)) {
        l = fromCore(c).filter(v -> v.input().equals(x));
      } else if (c.is("Reshape") && c.input(0).equals(x)) {
        List<Node> next = dataConsumers(c.output());
        if (next.size() == 1 && next.get(0).is("Gemm")) {
          l = fromCore(next.get(0)).filter(v -> v.input().equals(x));
        }
      }
      if (l.isPresent()) {
        found.add(l.get());
      } else if (depth < 2 && VitRecognizer.LAYOUT.contains(c.opType()) && c.input(0).equals(x)
          && dataConsumers(c.output()).stream().allMatch(n -> n.is("MatMul") || n.is("Gemm")
              || VitRecognizer.LAYOUT.contains(n.opType()))) {
        collectLinears(c.output(), found, depth + 1);
      }
    }
  }

  /** The linear layer whose output is {@code y}, if one is. */
  Optional<Linear> linearProducing(String y) {
    Node p = idx.producer(y).orElse(null);
    if (p == null) {
      return Optional.empty();
    }
    Node core = null;
    if (p.is("MatMul") || p.is("Gemm")) {
      core = p;
    } else if (p.is("Add")) {
      for (String in : p.inputs()) {
        Node q = idx.producer(in).orElse(null);
        if (q != null && q.is("MatMul")) {
          core = q;
        }
      }
    } else if (p.is("Reshape")) {
      core = idx.producer(p.input(0), "Gemm").orElse(null);
    }
    return core == null ? Optional.empty() : fromCore(core).filter(l -> l.output().equals(y));
  }

  /** The linear layer around a MatMul or Gemm node, when its weight is a 2-D constant. */
  Optional<Linear> linearAt(Node core) {
    return fromCore(core);
  }

  /** A linear layer around its MatMul or Gemm node, when the weight is a 2-D constant. */
  private Optional<Linear> fromCore(Node core) {
    Tensor w = idx.constant(core.input(1)).filter(t -> t.rank() == 2 && VitRecognizer.isFloat(t.dtype()))
        .orElse(null);
    if (w == null) {
      return Optional.empty();
    }
    List<String> nodes = new ArrayList<>(List.of(core.output()));
    String input = core.input(0);
    String output = core.output();
    String bias = null;
    boolean transposed = false;
    if (core.is("Gemm")) {
      if (core.intAttr("transA", 0) != 0 || core.floatAttr("alpha", 1f) != 1f || core.floatAttr("beta", 1f) != 1f) {
        return Optional.empty();
      }
      transposed = core.intAttr("transB", 0) != 0;
      if (!core.input(2).isEmpty()) {
        if (!idx.isConstant(core.input(2))) {
          return Optional.empty();
        }
        bias = core.input(2);
      }
      // torch.export flattens [batch, tokens, in] to two dimensions around a Gemm and restores them after.
      Node flatten = idx.producer(input, "Reshape").orElse(null);
      List<Node> after = dataConsumers(output);
      if (flatten != null && after.size() == 1 && after.get(0).is("Reshape")
          && dataConsumers(flatten.output()).size() == 1) {
        nodes.add(0, flatten.output());
        nodes.add(after.get(0).output());
        input = flatten.input(0);
        output = after.get(0).output();
      }
    } else {
      List<Node> after = dataConsumers(output);
      int out = (int) (long) w.dims().get(1);
      if (after.size() == 1 && after.get(0).is("Add")) {
        String b = other(after.get(0), output);
        Tensor bt = b == null ? null : idx.constant(b).orElse(null);
        if (bt != null && bt.elementCount() == out) {
          bias = b;
          output = after.get(0).output();
          nodes.add(output);
        }
      }
    }
    int in = (int) (long) w.dims().get(transposed ? 1 : 0);
    int out = (int) (long) w.dims().get(transposed ? 0 : 1);
    return Optional.of(new Linear(input, output, core.output(), core.input(0), core.input(1), transposed, bias, in,
        out, nodes));
  }

  // ---- layer norm --------------------------------------------------------------------------------------------

  /** The layer norm or RMS norm that normalises {@code x}, if one does. */
  Optional<Norm> normFrom(String x) {
    for (Node c : dataConsumers(x)) {
      if ((c.is("RMSNormalization") || c.opType().equals("SimplifiedLayerNormalization")) && c.input(0).equals(x)
          && (c.intAttr("axis", -1) == -1 || c.intAttr("axis", -1) == 2)) {
        String scale = c.inputs().size() < 2 || c.input(1).isEmpty() ? null : c.input(1);
        return Optional.of(new Norm(Norm.Kind.RMS_OPERATOR, x, c.output(), scale, null, c.floatAttr("epsilon", 1e-5f),
            List.of(c.output())));
      }
      if (c.is("LayerNormalization") && c.input(0).equals(x)) {
        long axis = c.intAttr("axis", -1);
        if (axis != -1 && axis != 2) {
          continue;
        }
        String scale = c.input(1).isEmpty() ? null : c.input(1);
        String bias = c.input(2).isEmpty() ? null : c.input(2);
        return Optional.of(new Norm(Norm.Kind.OPERATOR, x, c.output(), scale, bias, c.floatAttr("epsilon", 1e-5f),
            List.of(c.output())));
      }
      if (c.is("ReduceMean") && c.input(0).equals(x)) {
        Optional<Norm> n = decomposedNorm(x, c);
        if (n.isPresent()) {
          return n;
        }
      }
      if ((c.is("Pow") || c.is("Mul")) && c.input(0).equals(x)) {
        Optional<Norm> n = decomposedRmsNorm(x, c);
        if (n.isPresent()) {
          return n;
        }
      }
    }
    return Optional.empty();
  }

  /** {@code x / sqrt(mean(x^2) + eps) * gamma}, with Div or Mul-by-Reciprocal: an RMSNorm spelled out. */
  private Optional<Norm> decomposedRmsNorm(String x, Node square) {
    boolean squares = square.is("Pow") ? idx.scalar(square.input(1)).map(e -> e == 2f).orElse(false)
        : square.input(1).equals(x);
    return squares ? fromSquare(x, x, square, new ArrayList<>(List.of(square.output())), Norm.Kind.RMS_DECOMPOSED)
        : Optional.empty();
  }

  /** {@code (x - mean(x)) / sqrt(mean((x - mean)^2) + eps) * gamma + beta}, with Div or Mul-by-Reciprocal. */
  private Optional<Norm> decomposedNorm(String x, Node mean) {
    List<String> nodes = new ArrayList<>(List.of(mean.output()));
    Node sub = single(dataConsumers(x), n -> n.is("Sub") && n.input(0).equals(x) && n.input(1).equals(mean.output()));
    if (sub == null) {
      return Optional.empty();
    }
    String d = sub.output();
    nodes.add(d);
    Node square = single(dataConsumers(d), n -> (n.is("Pow") && n.input(0).equals(d) && idx.scalar(n.input(1))
        .map(e -> e == 2f).orElse(false)) || (n.is("Mul") && n.input(0).equals(d) && n.input(1).equals(d)));
    if (square == null) {
      return Optional.empty();
    }
    nodes.add(square.output());
    return fromSquare(x, d, square, nodes, Norm.Kind.DECOMPOSED);
  }

  /**
   * The rest of a spelled-out norm of {@code input} from the square of its centred value {@code d} ({@code input}
   * itself for an RMSNorm): the mean, plus epsilon, the square root, {@code d} divided by it, then gamma and (for a
   * LayerNorm) beta.
   */
  private Optional<Norm> fromSquare(String input, String d, Node square, List<String> nodes, Norm.Kind kind) {
    Node variance = onlyConsumer(square.output(), "ReduceMean");
    Node plusEps = variance == null ? null : onlyConsumer(variance.output(), "Add");
    String epsValue = plusEps == null ? null : other(plusEps, variance.output());
    Optional<Float> eps = epsValue == null ? Optional.empty() : idx.scalar(epsValue);
    Node sqrt = plusEps == null ? null : onlyConsumer(plusEps.output(), "Sqrt");
    if (sqrt == null || eps.isEmpty()) {
      return Optional.empty();
    }
    nodes.addAll(List.of(variance.output(), plusEps.output(), sqrt.output()));
    String normed;
    Node div = single(dataConsumers(d), n -> n.is("Div") && n.input(0).equals(d) && n.input(1).equals(sqrt.output()));
    if (div != null) {
      normed = div.output();
    } else {
      Node recip = onlyConsumer(sqrt.output(), "Reciprocal");
      Node mul = recip == null ? null : onlyConsumer(recip.output(), "Mul");
      if (mul == null || !d.equals(other(mul, recip.output()))) {
        return Optional.empty();
      }
      nodes.add(recip.output());
      normed = mul.output();
    }
    nodes.add(normed);
    String out = normed;
    String scale = null;
    String bias = null;
    Node mulGamma = onlyConsumer(out, "Mul");
    if (mulGamma != null && idx.isConstant(other(mulGamma, out) == null ? "" : other(mulGamma, out))) {
      scale = other(mulGamma, out);
      out = mulGamma.output();
      nodes.add(out);
    }
    Node addBeta = kind == Norm.Kind.DECOMPOSED ? onlyConsumer(out, "Add") : null;
    if (addBeta != null && idx.isConstant(other(addBeta, out) == null ? "" : other(addBeta, out))) {
      bias = other(addBeta, out);
      out = addBeta.output();
      nodes.add(out);
    }
    return Optional.of(new Norm(kind, input, out, scale, bias, eps.get(), nodes));
  }

  // ---- activations -------------------------------------------------------------------------------------------

  /**
   * The activation applied to {@code x}: GELU as the Gelu op or the Erf or tanh formula around it, QuickGELU, SiLU
   * ({@code x * sigmoid(x)}, or the Swish operator), or ReLU.
   */
  Optional<Activation> activationFrom(String x) {
    for (Node c : dataConsumers(x)) {
      if (!c.input(0).equals(x)) {
        continue;
      }
      if (c.opType().equals("Gelu") || c.opType().equals("FastGelu") || c.opType().equals("QuickGelu")) {
        return Optional.of(new Activation(Activation.Kind.OPERATOR, x, c.output(), List.of(c.output())));
      }
      if (c.is("Relu")) {
        return Optional.of(new Activation(Activation.Kind.RELU, x, c.output(), List.of(c.output())));
      }
      if (c.opType().equals("Swish") || c.opType().equals("Silu")) {
        return Optional.of(new Activation(Activation.Kind.SILU, x, c.output(), List.of(c.output())));
      }
    }
    // Grow the region of elementwise nodes computed from x and constants until it meets Erf or Tanh.
    Set<String> region = new LinkedHashSet<>();
    region.add(x);
    Node core = null;
    ArrayDeque<String> frontier = new ArrayDeque<>(List.of(x));
    for (int depth = 0; depth < 6 && core == null && !frontier.isEmpty(); depth++) {
      ArrayDeque<String> next = new ArrayDeque<>();
      for (String v : frontier) {
        for (Node c : dataConsumers(v)) {
          if (!inputsFrom(c, region) || region.contains(c.output())) {
            continue;
          }
          if (c.is("Erf") || c.is("Tanh") || c.is("Sigmoid")) {
            core = c;
            break;
          }
          if (ELEMENTWISE.contains(c.opType())) {
            region.add(c.output());
            next.add(c.output());
          }
        }
        if (core != null) {
          break;
        }
      }
      frontier = next;
    }
    if (core == null) {
      return Optional.empty();
    }
    // From the core, follow the one elementwise consumer as long as it combines region values and constants.
    String out = core.output();
    List<String> tail = new ArrayList<>(List.of(out));
    while (true) {
      List<Node> cs = dataConsumers(out);
      if (cs.size() != 1 || !ELEMENTWISE.contains(cs.get(0).opType())) {
        break;
      }
      Node c = cs.get(0);
      Set<String> withTail = new LinkedHashSet<>(region);
      withTail.addAll(tail);
      if (!inputsFrom(c, withTail)) {
        break;
      }
      out = c.output();
      tail.add(out);
    }
    if (tail.size() < 2) {
      return Optional.empty();
    }
    // The GELU is what the output depends on inside the region; a side branch such as x*0.5 is part of it.
    Set<String> inside = new LinkedHashSet<>(region);
    inside.addAll(tail);
    Set<String> used = new LinkedHashSet<>();
    ArrayDeque<String> work = new ArrayDeque<>(List.of(out));
    while (!work.isEmpty()) {
      String v = work.pop();
      if (v.equals(x) || !inside.contains(v) || !used.add(v)) {
        continue;
      }
      idx.producer(v).ifPresent(p -> work.addAll(p.inputs()));
    }
    List<String> nodes = inside.stream().filter(used::contains).toList();
    // x * sigmoid(x) is SiLU; QuickGELU scales x by 1.702 before the sigmoid.
    Activation.Kind kind = core.is("Erf") ? Activation.Kind.ERF : core.is("Tanh") ? Activation.Kind.TANH
        : core.input(0).equals(x) ? Activation.Kind.SILU : Activation.Kind.SIGMOID;
    return Optional.of(new Activation(kind, x, out, nodes));
  }

  /** Whether every input of {@code n} is in {@code region} or a constant. */
  private boolean inputsFrom(Node n, Set<String> region) {
    for (String in : n.inputs()) {
      if (!in.isEmpty() && !region.contains(in) && !idx.isConstant(in)) {
        return false;
      }
    }
    return true;
  }

  // ---- helpers -----------------------------------------------------------------------------------------------

  /** The single consumer of {@code value}, when there is exactly one and it has {@code opType}. */
  Node onlyConsumer(String value, String opType) {
    List<Node> cs = dataConsumers(value);
    return cs.size() == 1 && cs.get(0).is(opType) ? cs.get(0) : null;
  }

  private static Node single(List<Node> nodes, java.util.function.Predicate<Node> test) {
    Node found = null;
    for (Node n : nodes) {
      if (test.test(n)) {
        if (found != null) {
          return null;
        }
        found = n;
      }
    }
    return found;
  }

  /** Follows single Cast, Dropout and Identity consumers. */
  String skipCasts(String v) {
    String cur = v;
    for (int i = 0; i < 3; i++) {
      List<Node> cs = dataConsumers(cur);
      if (cs.size() == 1 && (cs.get(0).is("Cast") || cs.get(0).is("Dropout") || cs.get(0).is("Identity"))) {
        cur = cs.get(0).output();
      } else {
        break;
      }
    }
    return cur;
  }
}
