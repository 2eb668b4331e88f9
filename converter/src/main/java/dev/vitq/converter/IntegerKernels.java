package dev.vitq.converter;

import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
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
 * A deploy-time graph pass over a lowered model: writes the kernels ONNX Runtime would not reach by its own fusions.
 *
 * <ul>
 *   <li>A linear layer, {@code Add(MatMul(DequantizeLinear(a), DequantizeLinear(int weight)), bias)}, becomes one
 *       {@code com.microsoft.MatMulIntegerToFloat} with the bias. ONNX Runtime fuses the Q/DQ MatMul by itself but
 *       leaves the Add, a pass over the whole float output; the kernel adds the bias as it writes the output, and the
 *       erf-GELU that usually follows then fuses into Gelu instead of the slower BiasGelu.
 *   <li>A positive scalar multiplication (or division) whose only reader is a QuantizeLinear, such as attention's
 *       query scaling, is folded into that quantizer's scale: {@code Q(x * c, s) = Q(x, s / c)}.
 * </ul>
 *
 * <p>Only constants match: simulated quantizers (scales as graph inputs, float weights) are left as they are. The
 * integer levels are the same; only float rounding of the scale products differs.
 */
final class IntegerKernels {
  private final GraphIndex index;
  private final GraphBuilder b;
  private final Map<Node, Node> replaced = new HashMap<>();
  private final Set<Node> removed = new HashSet<>();

  private IntegerKernels(Graph graph) {
    this.index = GraphIndex.of(graph);
    this.b = GraphBuilder.around(graph);
  }

  static Model apply(Model model) {
    Graph g = model.graph();
    IntegerKernels k = new IntegerKernels(g);
    boolean fusedLinear = false;
    for (Node n : g.nodes()) {
      if (n.is("MatMul")) {
        fusedLinear |= k.linear(n);
      } else if (n.is("Mul") || n.is("Div")) {
        k.scaling(n);
      }
    }
    if (k.replaced.isEmpty()) {
      return model;
    }
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      if (!k.removed.contains(n)) {
        nodes.add(k.replaced.getOrDefault(n, n));
      }
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(k.b.initializers());
    Model out = model.withGraph(g.withNodes(nodes).withInitializers(inits));
    return fusedLinear ? MsDomain.imported(out) : out;
  }

  /** MatMul of a dequantized activation and a constant integer weight, with its bias Add when it has one. */
  private boolean linear(Node matmul) {
    Node dqa = index.producer(matmul.input(0), "DequantizeLinear").orElse(null);
    Node dqw = index.producer(matmul.input(1), "DequantizeLinear").orElse(null);
    Tensor weight = dqw == null ? null : integerWeight(dqw).orElse(null);
    Node add = onlyReader(matmul.output()).filter(a -> a.is("Add")).orElse(null);
    // The kernel takes 8-bit activations; 16-bit ones stay a DequantizeLinear before a float MatMul.
    boolean eightBit = dqa != null && index.constant(dqa.input(2))
        .filter(z -> z.dtype() == DType.UINT8 || z.dtype() == DType.INT8).isPresent();
    if (dqa == null || !eightBit || weight == null || !scalar(dqa.input(1)) || add == null) {
      return false;
    }
    String bias = add.input(0).equals(matmul.output()) ? add.input(1) : add.input(0);
    long columns = weight.dims().get(1);
    Optional<Tensor> biasValues = index.constant(bias);
    if (biasValues.isEmpty() || biasValues.get().dtype() != DType.FLOAT || biasValues.get().rank() != 1
        || biasValues.get().dims().get(0) != columns) {
      return false;
    }
    replaced.put(matmul, new Node(matmul.name(), "MatMulIntegerToFloat", MsDomain.NAME,
        List.of(dqa.input(0), dqw.input(0), dqa.input(1), dqw.input(1), dqa.input(2), "", bias),
        List.of(add.output()), List.of(), matmul.extras()));
    removed.add(add);
    for (Node dq : List.of(dqa, dqw)) {
      if (index.consumers(dq.output()).size() == 1 && !index.isGraphOutput(dq.output())) {
        removed.add(dq);
      }
    }
    return true;
  }

  /**
   * The weight of a DequantizeLinear of a constant 2-D int8 weight (stored, or int4 behind a Cast), per-column or
   * per-tensor, with zero points of zero; empty for anything else.
   */
  private Optional<Tensor> integerWeight(Node dq) {
    long axis = dq.intAttr("axis", 1);
    boolean perColumn = axis == 1 || axis == -1;
    if (!dq.input(2).isEmpty() || !(scalar(dq.input(1)) || perColumn && foldable(dq.input(1)).isPresent())) {
      return Optional.empty();
    }
    return foldable(dq.input(0))
        .filter(w -> w.rank() == 2 && (w.dtype() == DType.INT8 || w.dtype() == DType.INT4));
  }

  /**
   * The constant behind a value, directly or behind a Cast (int4 weights and float16 weight scales are stored so);
   * ONNX Runtime folds such a Cast at load time.
   */
  private Optional<Tensor> foldable(String value) {
    return index.constant(value).or(() -> index.producer(value, "Cast").flatMap(c -> index.constant(c.input(0))));
  }

  /** {@code Q(x * c, s)} or {@code Q(x / c, s)} with constants {@code c > 0} and scalar {@code s}. */
  private void scaling(Node op) {
    // Exporters write the constant of a multiplication on either side.
    int at = op.is("Mul") && scalar(op.input(0)) ? 0 : 1;
    Optional<Tensor> c = index.constant(op.input(at)).filter(t -> t.dtype() == DType.FLOAT && t.elementCount() == 1);
    Node q = onlyReader(op.output()).filter(r -> r.is("QuantizeLinear")).orElse(null);
    if (c.isEmpty() || q == null || !scalar(q.input(1)) || geluTail(op) || replaced.containsKey(q)) {
      return;
    }
    float factor = c.get().floats()[0];
    Tensor s = index.constant(q.input(1)).orElseThrow();
    if (!(factor > 0) || !Float.isFinite(factor)) {
      return;
    }
    float folded = op.is("Mul") ? s.floats()[0] / factor : s.floats()[0] * factor;
    String scale = b.initializer(q.input(1) + "_folded", Tensor.ofFloats("", s.dims(), new float[] {folded}));
    List<String> in = new ArrayList<>(q.inputs());
    in.set(0, op.input(1 - at));
    in.set(1, scale);
    replaced.put(q, q.withInputs(in));
    removed.add(op);
  }

  /**
   * The last multiplication of a GELU, {@code Mul(Mul(x, Add(Erf(..) or Tanh(..), 1)), 0.5)}, which ONNX Runtime
   * fuses with the rest into one Gelu (FastGelu) kernel only while it is there.
   */
  private boolean geluTail(Node op) {
    return op.inputs().stream().flatMap(v -> index.producer(v, "Mul").stream())
        .flatMap(m -> m.inputs().stream())
        .flatMap(v -> index.producer(v, "Add").stream())
        .flatMap(a -> a.inputs().stream())
        .anyMatch(v -> index.producer(v, "Erf").isPresent() || index.producer(v, "Tanh").isPresent());
  }

  private Optional<Node> onlyReader(String value) {
    List<Node> readers = index.consumers(value);
    return readers.size() == 1 && !index.isGraphOutput(value) ? Optional.of(readers.get(0)) : Optional.empty();
  }

  private boolean scalar(String value) {
    return index.constant(value).filter(t -> t.dtype() == DType.FLOAT && t.elementCount() == 1).isPresent();
  }
}
