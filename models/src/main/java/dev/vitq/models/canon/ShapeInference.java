package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Element types, shapes and small values of every value of a graph, propagated from its inputs (symbolic dimensions
 * stay symbolic) and constants through the operators ViT exports use. Small integer tensors (the shape arithmetic
 * exporters write: Shape, Gather, Unsqueeze, Concat, Mul, Div, ...) are evaluated element by element, so a reshape
 * target built from the batch size becomes "batch, 197, 12, 64". Operators it does not know give unknown results;
 * declared value types fill in where inference knows nothing.
 */
final class ShapeInference {
  private final Graph graph;
  private final GraphIndex idx;
  private final KnownFacts known = new KnownFacts();

  private ShapeInference(Graph graph) {
    this.graph = graph;
    this.idx = GraphIndex.of(graph);
  }

  /** Facts for every value of a graph (nodes in any order; a cycle leaves its values unknown). */
  static Map<String, Facts> infer(Graph graph) {
    ShapeInference s = new ShapeInference(graph);
    s.run();
    return s.known.asMap();
  }

  private void run() {
    for (Value v : graph.inputs()) {
      if (idx.initializer(v.name()).isEmpty() && v.type() != null) {
        known.put(v.name(), Facts.of(v.type().dtype(), toSym(v.type().shape())));
      }
    }
    for (Tensor t : graph.initializers()) {
      if (graph.input(t.name()).isEmpty()) {
        known.put(t.name(), ConstantInference.ofTensor(t));
      }
    }
    List<Node> order = graph.topologicalOrder().orElse(graph.nodes());
    for (Node n : order) {
      List<Facts> out;
      try {
        out = infer(n);
      } catch (RuntimeException e) {
        // A malformed node (wrong arity, impossible attribute) leaves its outputs unknown; checking is not our job.
        out = List.of();
      }
      for (int i = 0; i < n.outputs().size(); i++) {
        String name = n.outputs().get(i);
        if (name.isEmpty()) {
          continue;
        }
        Facts f = i < out.size() && out.get(i) != null ? out.get(i) : Facts.UNKNOWN;
        known.put(name, withDeclared(name, f));
      }
    }
  }

  /** Fills in what inference did not find from the value's declared type. */
  private Facts withDeclared(String name, Facts f) {
    if (f.dtype() != null && f.hasRank()) {
      return f;
    }
    Optional<TensorType> declared = idx.declaredType(name);
    if (declared.isEmpty()) {
      return f;
    }
    DType dtype = f.dtype() != null ? f.dtype() : declared.get().dtype();
    List<SymInt> shape = f.hasRank() ? f.shape() : declaredShape(declared.get());
    return new Facts(dtype, shape, f.ints(), f.reals());
  }

  /** A declared shape: fixed sizes only; exporters name intermediate dimensions arbitrarily, so those are unknown. */
  private static List<SymInt> declaredShape(TensorType t) {
    if (t.shape() == null) {
      return null;
    }
    return t.shape().stream().map(d -> d.isFixed() ? SymInt.of(d.size()) : SymInt.UNKNOWN).toList();
  }

  static List<SymInt> toSym(List<Dim> dims) {
    if (dims == null) {
      return null;
    }
    return dims.stream().map(d -> d.isFixed() ? SymInt.of(d.size())
        : d.symbol() != null ? SymInt.symbol(d.symbol()) : SymInt.UNKNOWN).toList();
  }

  // ---- dispatch, by operator family ---------------------------------------------------------------------------

  private List<Facts> infer(Node n) {
    if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
      return msInfer(n);
    }
    Facts x = known.get(n.input(0));
    return switch (n.opType()) {
      case "Constant" -> List.of(idx.constant(n.output()).map(ConstantInference::ofTensor).orElse(Facts.UNKNOWN));
      case "ConstantOfShape" -> List.of(ConstantInference.constantOfShape(known, n));
      case "Range" -> List.of(ConstantInference.range(known, n));
      case "Identity" -> List.of(x);
      case "Dropout" -> List.of(x, Facts.of(DType.BOOL, x.shape()));
      case "Shape" -> List.of(LayoutInference.shapeOf(n, x));
      case "Size" -> List.of(LayoutInference.sizeOf(x));
      case "Unsqueeze" -> List.of(LayoutInference.unsqueeze(x, known.attrOrInput(n, "axes", 1)));
      case "Squeeze" -> List.of(LayoutInference.squeeze(x, known.attrOrInput(n, "axes", 1)));
      case "Reshape" -> List.of(LayoutInference.reshape(x, known.get(n.input(1)), n.intAttr("allowzero", 0) != 0));
      case "Flatten" -> List.of(LayoutInference.flatten(x, (int) n.intAttr("axis", 1)));
      case "Transpose" -> List.of(LayoutInference.transpose(x, n.intsAttr("perm").orElse(null)));
      case "Gather" -> List.of(SlicingInference.gather(n, x, known.get(n.input(1))));
      case "Concat" -> List.of(SlicingInference.concat(known, n));
      case "Slice" -> List.of(SlicingInference.slice(known, n, x));
      case "Split" -> SlicingInference.split(known, n, x);
      case "Pad" -> List.of(SlicingInference.pad(known, n, x));
      case "Cast" -> List.of(ElementwiseInference.cast(x, ShapeMath.dtype(n.intAttr("to", 0))));
      case "CastLike" -> List.of(ElementwiseInference.cast(x, known.get(n.input(1)).dtype()));
      case "Expand" -> List.of(ElementwiseInference.expand(x, known.get(n.input(1))));
      case "Tile" -> List.of(ElementwiseInference.tile(x, known.longs(n, 1)));
      case "Where" -> List.of(ElementwiseInference.elementwise(n, List.of(known.get(n.input(0)),
          known.get(n.input(1)), known.get(n.input(2))), known.get(n.input(1)).dtype()));
      case "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "BitShift", "PRelu" ->
          List.of(ElementwiseInference.elementwise(n, known.inputs(n), x.dtype()));
      case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor" ->
          List.of(ElementwiseInference.elementwise(n, known.inputs(n), DType.BOOL));
      case "Not", "IsNaN", "IsInf" -> List.of(ElementwiseInference.unary(n, x, DType.BOOL));
      case "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Floor", "Ceil", "Round", "Sigmoid", "Tanh", "Relu",
          "Erf", "Sin", "Cos", "Sign", "Softplus", "Softsign", "Elu", "Selu", "LeakyRelu", "HardSigmoid",
          "HardSwish", "Gelu", "Mish", "Celu", "ThresholdedRelu", "Softmax", "LogSoftmax", "Hardmax", "Clip",
          "QuantizeLinear", "DequantizeLinear", "Trilu" ->
          List.of(ElementwiseInference.unary(n, x, ElementwiseInference.outType(n, x)));
      case "MatMul", "MatMulInteger" -> List.of(LinearAlgebraInference.matmul(x, known.get(n.input(1)),
          n.is("MatMul") ? x.dtype() : DType.INT32));
      case "Gemm" -> List.of(LinearAlgebraInference.gemm(n, x, known.get(n.input(1))));
      case "Conv", "ConvInteger" -> List.of(LinearAlgebraInference.conv(n, x, known.get(n.input(1)).shape(),
          n.is("Conv") ? x.dtype() : DType.INT32));
      case "MaxPool", "AveragePool", "LpPool" -> List.of(LinearAlgebraInference.pool(n, x));
      case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool" -> List.of(ReductionInference.globalPool(x));
      case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare" -> List.of(ReductionInference.reduce(known, n, x));
      case "ArgMax", "ArgMin" -> List.of(ReductionInference.argReduce(n, x));
      // Normalisations keep their input's type and shape; LayerNormalization's optional statistics are not tracked.
      case "LayerNormalization" -> List.of(x, Facts.of(DType.FLOAT, null), Facts.of(DType.FLOAT, null));
      case "BatchNormalization", "InstanceNormalization", "GroupNormalization", "LRN" -> List.of(x);
      default -> List.of();
    };
  }

  /** ONNX Runtime's contrib operators that ViT exports and our own deploy-time rewrites use. */
  private List<Facts> msInfer(Node n) {
    Facts x = known.get(n.input(0));
    return switch (n.opType()) {
      case "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "SkipLayerNormalization", "LayerNormalization",
          "SimplifiedLayerNormalization" -> List.of(x);
      // vitq's cpu target writes its integer linears as MatMulIntegerToFloat: the product's shape, in float.
      case "MatMulIntegerToFloat" -> List.of(LinearAlgebraInference.matmul(x, known.get(n.input(1)), DType.FLOAT));
      default -> List.of();
    };
  }
}
