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
 * The {@code w8-dynamic} scheme, written without calibration: every linear layer with a constant float weight (a
 * MatMul, or a Gemm without alpha or beta) becomes one {@code com.microsoft.DynamicQuantizeMatMul} with int8 weights,
 * one symmetric scale per output column, and its bias Add folded in. The kernel quantizes its activation to uint8 on
 * a range it finds at run time, multiplies in integers and writes float.
 *
 * <p>ONNX Runtime's {@code quantize_dynamic} writes the same computation as DynamicQuantizeLinear, MatMulInteger, Cast,
 * Mul and Add, which ONNX Runtime's optimiser fuses into this very kernel at load time (seen in its optimised graph
 * of the shared model: 49 DynamicQuantizeMatMul with their biases); writing the fused node saves that work at every
 * load and does not depend on the optimisation level. Convolutions stay float: a ViT's only one is the patch
 * embedding, a fraction of a percent of its weights (as it is at W8A8, vitq's patch embedding and head keep 8-bit
 * weights; here the head is a linear layer like any other). Matrix products of two activations (attention's scores
 * and context) stay float too, as they do in {@code quantize_dynamic}.
 */
public final class DynamicQuantization {
  private static final int LEVELS = 127;

  private final GraphIndex index;
  private final GraphBuilder b;
  private final Map<Node, Node> replaced = new HashMap<>();
  private final Set<Node> removed = new HashSet<>();
  /** Quantized weights by the float weight's value name, so a weight read by two layers is stored once. */
  private final Map<String, String[]> quantized = new HashMap<>();

  private DynamicQuantization(Graph graph) {
    this.index = GraphIndex.of(graph);
    this.b = GraphBuilder.around(graph);
  }

  /**
   * The model with its linear layers dynamically quantized, and how many there were.
   *
   * @param model a float32 model
   * @param layers the linear layers rewritten
   */
  public record Result(Model model, int layers) {}

  /** Rewrites every linear layer with a constant float weight; the float weights no node reads any more are dropped. */
  public static Result apply(Model model) {
    Graph g = model.graph();
    DynamicQuantization q = new DynamicQuantization(g);
    for (Node n : g.nodes()) {
      if (n.is("MatMul") || n.is("Gemm")) {
        q.linear(n);
      }
    }
    if (q.replaced.isEmpty()) {
      return new Result(model, 0);
    }
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      if (!q.removed.contains(n)) {
        nodes.add(q.replaced.getOrDefault(n, n));
      }
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(q.b.initializers());
    Model out = MsDomain.imported(model.withGraph(g.withNodes(nodes).withInitializers(inits)));
    return new Result(out, q.replaced.size());
  }

  private void linear(Node n) {
    if (!n.domain().isEmpty() || index.isConstant(n.input(0))) {
      return;
    }
    boolean gemm = n.is("Gemm");
    if (gemm && (n.intAttr("transA", 0) != 0 || n.floatAttr("alpha", 1f) != 1f || n.floatAttr("beta", 1f) != 1f)) {
      return;
    }
    Tensor w = index.constant(n.input(1)).filter(t -> t.dtype() == DType.FLOAT && t.rank() == 2).orElse(null);
    if (w == null) {
      return;
    }
    boolean transposed = gemm && n.intAttr("transB", 0) != 0;
    long columns = transposed ? w.dims().get(0) : w.dims().get(1);
    float[] values = w.floats();
    for (float v : values) {
      if (!Float.isFinite(v)) {
        return;
      }
    }
    String bias = "";
    String output = n.output();
    if (gemm && n.inputs().size() > 2 && !n.input(2).isEmpty()) {
      bias = bias(n.input(2), columns).orElse(null);
      if (bias == null) {
        return;
      }
    } else if (!gemm) {
      Node add = onlyReader(n.output()).filter(a -> a.is("Add") && a.domain().isEmpty()).orElse(null);
      if (add != null) {
        String other = add.input(0).equals(n.output()) ? add.input(1) : add.input(0);
        Optional<String> folded = bias(other, columns);
        if (folded.isPresent()) {
          bias = folded.get();
          output = add.output();
          removed.add(add);
        }
      }
    }
    String[] weight = quantized.computeIfAbsent(n.input(1), name -> quantize(name, values, w.dims(), transposed));
    List<String> inputs = List.of(n.input(0), weight[0], weight[1], "", bias);
    if (bias.isEmpty()) {
      inputs = inputs.subList(0, 3);
    }
    replaced.put(n, new Node(n.name(), "DynamicQuantizeMatMul", MsDomain.NAME, inputs, List.of(output), List.of(),
        n.extras()));
  }

  /** The bias of a layer with {@code columns} outputs: a float constant of shape [columns] (or [1, columns]). */
  private Optional<String> bias(String value, long columns) {
    Optional<Tensor> c = index.constant(value).filter(t -> t.dtype() == DType.FLOAT && t.elementCount() == columns
        && (t.rank() == 1 || t.rank() == 2 && t.dims().get(0) == 1));
    if (c.isEmpty()) {
      return Optional.empty();
    }
    if (c.get().rank() == 1) {
      return Optional.of(value);
    }
    return Optional.of(b.initializer(value + "_vector", c.get().reshaped(List.of(columns))));
  }

  /**
   * The int8 weight, [in, out], and its per-column scales: each column's largest magnitude maps to 127, the rest
   * round to the nearest level (ties to even).
   */
  private String[] quantize(String name, float[] values, List<Long> dims, boolean transposed) {
    int rows = Math.toIntExact(transposed ? dims.get(1) : dims.get(0));
    int cols = Math.toIntExact(transposed ? dims.get(0) : dims.get(1));
    float[] scales = new float[cols];
    for (int i = 0; i < values.length; i++) {
      int col = transposed ? i / rows : i % cols;
      scales[col] = Math.max(scales[col], Math.abs(values[i]));
    }
    for (int c = 0; c < cols; c++) {
      scales[c] = scales[c] == 0 ? 1f : scales[c] / LEVELS;
    }
    byte[] levels = new byte[rows * cols];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        float v = transposed ? values[c * rows + r] : values[r * cols + c];
        long level = Math.round(Math.rint(v / scales[c]));
        levels[r * cols + c] = (byte) Math.max(-LEVELS, Math.min(LEVELS, level));
      }
    }
    String weight = b.initializer(name + "_int8", Tensor.ofBytes("", DType.INT8, List.of((long) rows, (long) cols),
        levels));
    String scale = b.initializer(name + "_scale", Tensor.ofFloats("", List.of((long) cols), scales));
    return new String[] {weight, scale};
  }

  private Optional<Node> onlyReader(String value) {
    List<Node> readers = index.consumers(value);
    return readers.size() == 1 && !index.isGraphOutput(value) ? Optional.of(readers.get(0)) : Optional.empty();
  }
}
