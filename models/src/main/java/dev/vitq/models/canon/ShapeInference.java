package dev.vitq.models.canon;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
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
  /** Largest tensor whose elements are evaluated; shape arithmetic and scalars are far smaller. */
  static final int MAX_CONTENT = 1 << 16;

  private final Graph graph;
  private final GraphIndex idx;
  private final Map<String, Facts> facts = new HashMap<>();

  private ShapeInference(Graph graph) {
    this.graph = graph;
    this.idx = GraphIndex.of(graph);
  }

  /** Facts for every value of a graph (nodes in any order; a cycle leaves its values unknown). */
  static Map<String, Facts> infer(Graph graph) {
    ShapeInference s = new ShapeInference(graph);
    s.run();
    return s.facts;
  }

  private void run() {
    for (Value v : graph.inputs()) {
      if (idx.initializer(v.name()).isEmpty() && v.type() != null) {
        facts.put(v.name(), Facts.of(v.type().dtype(), toSym(v.type().shape())));
      }
    }
    for (Tensor t : graph.initializers()) {
      if (graph.input(t.name()).isEmpty()) {
        facts.put(t.name(), ofTensor(t));
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
        facts.put(name, withDeclared(name, f));
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

  static Facts ofTensor(Tensor t) {
    List<SymInt> shape = t.dims().stream().map(SymInt::of).toList();
    long n = t.elementCount();
    if (n < 0 || n > MAX_CONTENT || t.dtype() == DType.STRING) {
      return Facts.of(t.dtype(), shape);
    }
    if (Facts.isInteger(t.dtype())) {
      long[] v = t.longs();
      SymInt[] ints = new SymInt[v.length];
      for (int i = 0; i < v.length; i++) {
        ints[i] = SymInt.of(v[i]);
      }
      return new Facts(t.dtype(), shape, ints, null);
    }
    if (Facts.isReal(t.dtype())) {
      float[] v = t.floats();
      double[] reals = new double[v.length];
      for (int i = 0; i < v.length; i++) {
        reals[i] = t.dtype() == DType.DOUBLE ? t.data().getDouble(i * 8) : v[i];
      }
      return new Facts(t.dtype(), shape, null, reals);
    }
    return Facts.of(t.dtype(), shape);
  }

  private Facts f(String name) {
    if (name.isEmpty()) {
      return Facts.UNKNOWN;
    }
    return facts.getOrDefault(name, Facts.UNKNOWN);
  }

  /** The known integers of an input (axes, starts, a target shape), or null. */
  private long[] longs(Node n, int input) {
    return input < n.inputs().size() ? f(n.input(input)).knownLongs() : null;
  }

  /** An axes-like list from the attribute (older opsets) or else the input (newer opsets); null when unknown. */
  private long[] attrOrInput(Node n, String attr, int input) {
    Optional<List<Long>> a = n.intsAttr(attr);
    if (a.isPresent()) {
      return a.get().stream().mapToLong(Long::longValue).toArray();
    }
    if (input < n.inputs().size() && !n.input(input).isEmpty()) {
      return longs(n, input);
    }
    return new long[0];
  }

  // ---- inference ---------------------------------------------------------------------------------------------

  private List<Facts> infer(Node n) {
    if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
      return msInfer(n);
    }
    Facts x = f(n.input(0));
    return switch (n.opType()) {
      case "Constant" -> List.of(idx.constant(n.output()).map(ShapeInference::ofTensor).orElse(Facts.UNKNOWN));
      case "Identity" -> List.of(x);
      case "Dropout" -> List.of(x, Facts.of(DType.BOOL, x.shape()));
      case "Shape" -> List.of(shapeOf(n, x));
      case "Size" -> List.of(sizeOf(x));
      case "Cast" -> List.of(cast(x, dtype(n.intAttr("to", 0))));
      case "CastLike" -> List.of(cast(x, f(n.input(1)).dtype()));
      case "Gather" -> List.of(gather(n, x, f(n.input(1))));
      case "Unsqueeze" -> List.of(unsqueeze(x, attrOrInput(n, "axes", 1)));
      case "Squeeze" -> List.of(squeeze(x, attrOrInput(n, "axes", 1)));
      case "Concat" -> List.of(concat(n));
      case "Reshape" -> List.of(reshape(x, f(n.input(1)), n.intAttr("allowzero", 0) != 0));
      case "Flatten" -> List.of(flatten(x, (int) n.intAttr("axis", 1)));
      case "Transpose" -> List.of(transpose(x, n.intsAttr("perm").orElse(null)));
      case "Slice" -> List.of(slice(n, x));
      case "Split" -> split(n, x);
      case "Expand" -> List.of(expand(x, f(n.input(1))));
      case "Tile" -> List.of(tile(x, longs(n, 1)));
      case "ConstantOfShape" -> List.of(constantOfShape(n));
      case "Range" -> List.of(range(n));
      case "Where" -> List.of(elementwise(n, List.of(f(n.input(0)), f(n.input(1)), f(n.input(2))), f(n.input(1))
          .dtype()));
      case "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "BitShift", "PRelu" ->
          List.of(elementwise(n, inputs(n), x.dtype()));
      case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor" ->
          List.of(elementwise(n, inputs(n), DType.BOOL));
      case "Not", "IsNaN", "IsInf" -> List.of(unary(n, x, DType.BOOL));
      case "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Floor", "Ceil", "Round", "Sigmoid", "Tanh", "Relu",
          "Erf", "Sin", "Cos", "Sign", "Softplus", "Softsign", "Elu", "Selu", "LeakyRelu", "HardSigmoid",
          "HardSwish", "Gelu", "Mish", "Celu", "ThresholdedRelu", "Softmax", "LogSoftmax", "Hardmax", "Clip",
          "QuantizeLinear", "DequantizeLinear", "Trilu" -> List.of(unary(n, x, outType(n, x)));
      case "LayerNormalization" -> List.of(x, Facts.of(DType.FLOAT, null), Facts.of(DType.FLOAT, null));
      case "MatMul", "MatMulInteger" -> List.of(matmul(x, f(n.input(1)), n.is("MatMul") ? x.dtype() : DType.INT32));
      case "Gemm" -> List.of(gemm(n, x, f(n.input(1))));
      case "Conv", "ConvInteger" -> List.of(conv(n, x, f(n.input(1)).shape(), n.is("Conv") ? x.dtype()
          : DType.INT32));
      case "MaxPool", "AveragePool", "LpPool" -> List.of(pool(n, x));
      case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool" -> List.of(globalPool(x));
      case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare" -> List.of(reduce(n, x));
      case "ArgMax", "ArgMin" -> List.of(argReduce(n, x));
      case "Pad" -> List.of(pad(n, x));
      case "BatchNormalization", "InstanceNormalization", "GroupNormalization", "LRN" -> List.of(x);
      default -> List.of();
    };
  }

  /** ONNX Runtime's contrib operators that ViT exports and our own deploy-time rewrites use. */
  private List<Facts> msInfer(Node n) {
    Facts x = f(n.input(0));
    return switch (n.opType()) {
      case "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "SkipLayerNormalization", "LayerNormalization",
          "SimplifiedLayerNormalization" -> List.of(x);
      default -> List.of();
    };
  }

  /** The element type of an ONNX type code, or null when the code names none. */
  static DType dtype(long code) {
    try {
      return code > 0 && code < 256 ? DType.of((int) code) : null;
    } catch (dev.vitq.models.VitqException e) {
      return null;
    }
  }

  private List<Facts> inputs(Node n) {
    List<Facts> in = new ArrayList<>();
    for (String v : n.inputs()) {
      in.add(f(v));
    }
    return in;
  }

  private static DType outType(Node n, Facts x) {
    if (n.is("QuantizeLinear")) {
      return null;
    }
    if (n.is("DequantizeLinear")) {
      return DType.FLOAT;
    }
    return x.dtype();
  }

  private static Facts shapeOf(Node n, Facts x) {
    if (!x.hasRank()) {
      return Facts.of(DType.INT64, null);
    }
    int r = x.rank();
    int start = (int) clampAxis(n.intAttr("start", 0), r);
    int end = (int) clampAxis(n.intAttr("end", r), r);
    List<SymInt> dims = x.shape().subList(start, Math.max(start, end));
    return new Facts(DType.INT64, List.of(SymInt.of(dims.size())), dims.toArray(new SymInt[0]), null);
  }

  private static long clampAxis(long a, int rank) {
    long v = a < 0 ? a + rank : a;
    return Math.max(0, Math.min(rank, v));
  }

  private static Facts sizeOf(Facts x) {
    SymInt n = SymInt.of(1);
    if (x.hasRank()) {
      for (SymInt d : x.shape()) {
        n = n.times(d);
      }
    } else {
      n = SymInt.UNKNOWN;
    }
    return new Facts(DType.INT64, List.of(), new SymInt[] {n}, null);
  }

  private static Facts cast(Facts x, DType to) {
    if (to == null) {
      return Facts.UNKNOWN;
    }
    SymInt[] ints = null;
    double[] reals = null;
    if (Facts.isInteger(to)) {
      if (x.ints() != null) {
        ints = to == DType.BOOL ? map(x.ints(), v -> v.isKnown() ? SymInt.of(v.value() != 0 ? 1 : 0) : SymInt.UNKNOWN)
            : x.ints();
      } else if (x.reals() != null) {
        ints = new SymInt[x.reals().length];
        for (int i = 0; i < ints.length; i++) {
          double v = x.reals()[i];
          ints[i] = Double.isFinite(v) ? SymInt.of(to == DType.BOOL ? (v != 0 ? 1 : 0) : (long) v) : SymInt.UNKNOWN;
        }
      }
    } else if (Facts.isReal(to)) {
      if (x.reals() != null) {
        reals = round(x.reals(), to);
      } else if (x.ints() != null && x.fullyKnown()) {
        reals = new double[x.ints().length];
        for (int i = 0; i < reals.length; i++) {
          reals[i] = x.ints()[i].value();
        }
        reals = round(reals, to);
      }
    }
    return new Facts(to, x.shape(), ints, reals);
  }

  private static SymInt[] map(SymInt[] in, java.util.function.UnaryOperator<SymInt> fn) {
    SymInt[] out = new SymInt[in.length];
    for (int i = 0; i < in.length; i++) {
      out[i] = fn.apply(in[i]);
    }
    return out;
  }

  /** Rounds computed values to what the element type holds, as ONNX Runtime's float arithmetic would give. */
  static double[] round(double[] v, DType t) {
    double[] out = v.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] = switch (t) {
        case FLOAT -> (float) out[i];
        case FLOAT16 -> Float.float16ToFloat(Float.floatToFloat16((float) out[i]));
        case BFLOAT16 -> Float.intBitsToFloat(Float.floatToIntBits((float) out[i]) & 0xffff0000);
        default -> out[i];
      };
    }
    return out;
  }

  // ---- data movement -----------------------------------------------------------------------------------------

  private Facts gather(Node n, Facts data, Facts indices) {
    if (!data.hasRank() || !indices.hasRank()) {
      return Facts.of(data.dtype(), null);
    }
    int r = data.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    List<SymInt> shape = new ArrayList<>(data.shape().subList(0, axis));
    shape.addAll(indices.shape());
    shape.addAll(data.shape().subList(axis + 1, r));
    long[] dims = data.knownDims();
    long[] ind = indices.knownLongs();
    long outCount = knownCount(shape);
    if (dims == null || ind == null || outCount < 0 || outCount > MAX_CONTENT || !data.hasContent()) {
      return Facts.of(data.dtype(), shape);
    }
    long outer = 1;
    for (int d = 0; d < axis; d++) {
      outer *= dims[d];
    }
    long inner = 1;
    for (int d = axis + 1; d < r; d++) {
      inner *= dims[d];
    }
    int[] from = new int[(int) outCount];
    int k = 0;
    for (long o = 0; o < outer; o++) {
      for (long i : ind) {
        long j = i < 0 ? i + dims[axis] : i;
        if (j < 0 || j >= dims[axis]) {
          return Facts.of(data.dtype(), shape);
        }
        for (long in = 0; in < inner; in++) {
          from[k++] = (int) ((o * dims[axis] + j) * inner + in);
        }
      }
    }
    return pick(data, shape, from);
  }

  /** The facts of a value whose elements are {@code data}'s at the given flat positions. */
  private static Facts pick(Facts data, List<SymInt> shape, int[] from) {
    if (data.ints() != null) {
      SymInt[] out = new SymInt[from.length];
      for (int i = 0; i < from.length; i++) {
        out[i] = data.ints()[from[i]];
      }
      return new Facts(data.dtype(), shape, out, null);
    }
    if (data.reals() != null) {
      double[] out = new double[from.length];
      for (int i = 0; i < from.length; i++) {
        out[i] = data.reals()[from[i]];
      }
      return new Facts(data.dtype(), shape, null, out);
    }
    return Facts.of(data.dtype(), shape);
  }

  private static Facts withShape(Facts x, List<SymInt> shape) {
    return new Facts(x.dtype(), shape, x.ints(), x.reals());
  }

  private static Facts unsqueeze(Facts x, long[] axes) {
    if (!x.hasRank() || axes == null) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank() + axes.length;
    boolean[] inserted = new boolean[r];
    for (long a : axes) {
      int ax = (int) (a < 0 ? a + r : a);
      if (ax < 0 || ax >= r) {
        return Facts.of(x.dtype(), null);
      }
      inserted[ax] = true;
    }
    List<SymInt> shape = new ArrayList<>();
    int k = 0;
    for (int d = 0; d < r; d++) {
      shape.add(inserted[d] ? SymInt.of(1) : x.shape().get(k++));
    }
    return withShape(x, shape);
  }

  private static Facts squeeze(Facts x, long[] axes) {
    if (!x.hasRank() || axes == null) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    boolean[] removed = new boolean[r];
    if (axes.length == 0) {
      for (int d = 0; d < r; d++) {
        SymInt s = x.shape().get(d);
        if (!s.isKnown()) {
          return Facts.of(x.dtype(), null);
        }
        removed[d] = s.value() == 1;
      }
    }
    for (long a : axes) {
      removed[(int) (a < 0 ? a + r : a)] = true;
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      if (!removed[d]) {
        shape.add(x.shape().get(d));
      }
    }
    return withShape(x, shape);
  }

  private Facts concat(Node n) {
    List<Facts> parts = inputs(n);
    Facts first = parts.get(0);
    if (parts.stream().anyMatch(p -> !p.hasRank() || p.rank() != first.rank())) {
      return Facts.of(first.dtype(), null);
    }
    int r = first.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    List<SymInt> shape = new ArrayList<>(first.shape());
    SymInt total = SymInt.of(0);
    for (Facts p : parts) {
      total = total.plus(p.shape().get(axis));
    }
    for (int d = 0; d < r; d++) {
      if (d != axis) {
        for (Facts p : parts) {
          if (!shape.get(d).isKnown() && p.shape().get(d).isKnown()) {
            shape.set(d, p.shape().get(d));
          }
        }
      }
    }
    shape.set(axis, total);
    long count = knownCount(shape);
    boolean content = parts.stream().allMatch(p -> p.hasContent() && p.knownDims() != null)
        && count >= 0 && count <= MAX_CONTENT;
    if (!content) {
      return Facts.of(first.dtype(), shape);
    }
    // Flatten every part in order along the axis: outer blocks, then each part's slab.
    long outer = 1;
    for (int d = 0; d < axis; d++) {
      outer *= shape.get(d).value();
    }
    boolean ints = first.ints() != null;
    SymInt[] outInts = ints ? new SymInt[(int) count] : null;
    double[] outReals = ints ? null : new double[(int) count];
    int k = 0;
    for (long o = 0; o < outer; o++) {
      for (Facts p : parts) {
        long slab = p.knownCount() / outer;
        for (long i = 0; i < slab; i++) {
          int src = (int) (o * slab + i);
          if (ints) {
            if (p.ints() == null) {
              return Facts.of(first.dtype(), shape);
            }
            outInts[k++] = p.ints()[src];
          } else {
            if (p.reals() == null) {
              return Facts.of(first.dtype(), shape);
            }
            outReals[k++] = p.reals()[src];
          }
        }
      }
    }
    return new Facts(first.dtype(), shape, outInts, outReals);
  }

  /** Reshape's output shape; a target entry -1 is solved from the element count, symbolically if need be. */
  static List<SymInt> reshapeTarget(Facts x, SymInt[] target, boolean allowZero) {
    List<SymInt> shape = new ArrayList<>();
    int infer = -1;
    for (int d = 0; d < target.length; d++) {
      SymInt t = target[d];
      if (t.isKnown() && t.value() == 0 && !allowZero) {
        if (!x.hasRank() || d >= x.rank()) {
          return null;
        }
        shape.add(x.shape().get(d));
      } else if (t.isKnown() && t.value() == -1) {
        infer = d;
        shape.add(SymInt.UNKNOWN);
      } else {
        shape.add(t);
      }
    }
    if (infer >= 0) {
      SymInt total = product(x.shape());
      SymInt others = SymInt.of(1);
      for (int d = 0; d < shape.size(); d++) {
        if (d != infer) {
          others = others.times(shape.get(d));
        }
      }
      shape.set(infer, total.dividedBy(others));
    }
    return shape;
  }

  static SymInt product(List<SymInt> dims) {
    if (dims == null) {
      return SymInt.UNKNOWN;
    }
    SymInt p = SymInt.of(1);
    for (SymInt d : dims) {
      p = p.times(d);
    }
    return p;
  }

  private static Facts reshape(Facts x, Facts target, boolean allowZero) {
    if (target.ints() == null) {
      return Facts.of(x.dtype(), target.hasRank() && target.knownDims() != null && target.rank() == 1
          ? unknownDims((int) target.knownDims()[0]) : null);
    }
    return withShape(x, reshapeTarget(x, target.ints(), allowZero));
  }

  private static List<SymInt> unknownDims(int rank) {
    List<SymInt> out = new ArrayList<>();
    for (int i = 0; i < rank; i++) {
      out.add(SymInt.UNKNOWN);
    }
    return out;
  }

  private static Facts flatten(Facts x, int axis) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), unknownDims(2));
    }
    int a = axis < 0 ? axis + x.rank() : axis;
    return withShape(x, List.of(product(x.shape().subList(0, a)), product(x.shape().subList(a, x.rank()))));
  }

  private static Facts transpose(Facts x, List<Long> perm) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    int[] p = new int[r];
    for (int d = 0; d < r; d++) {
      p[d] = perm == null ? r - 1 - d : (int) (long) perm.get(d);
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      shape.add(x.shape().get(p[d]));
    }
    long[] dims = x.knownDims();
    if (!x.hasContent() || dims == null) {
      return Facts.of(x.dtype(), shape);
    }
    long[] outDims = new long[r];
    for (int d = 0; d < r; d++) {
      outDims[d] = dims[p[d]];
    }
    long[] strides = strides(dims);
    int count = (int) x.knownCount();
    int[] from = new int[count];
    long[] idx = new long[r];
    for (int i = 0; i < count; i++) {
      long rem = i;
      long src = 0;
      for (int d = r - 1; d >= 0; d--) {
        idx[d] = rem % outDims[d];
        rem /= outDims[d];
        src += idx[d] * strides[p[d]];
      }
      from[i] = (int) src;
    }
    return pick(x, shape, from);
  }

  static long[] strides(long[] dims) {
    long[] s = new long[dims.length];
    long acc = 1;
    for (int d = dims.length - 1; d >= 0; d--) {
      s[d] = acc;
      acc *= dims[d];
    }
    return s;
  }

  private Facts slice(Node n, Facts x) {
    long[] starts;
    long[] ends;
    long[] axes;
    long[] steps;
    if (n.attribute("starts").isPresent()) {
      starts = n.intsAttr("starts").orElseThrow().stream().mapToLong(Long::longValue).toArray();
      ends = n.intsAttr("ends").orElseThrow().stream().mapToLong(Long::longValue).toArray();
      axes = n.intsAttr("axes").map(a -> a.stream().mapToLong(Long::longValue).toArray()).orElse(null);
      steps = null;
    } else {
      starts = longs(n, 1);
      ends = longs(n, 2);
      axes = n.input(3).isEmpty() ? null : longs(n, 3);
      steps = n.input(4).isEmpty() ? null : longs(n, 4);
      if ((!n.input(3).isEmpty() && axes == null) || (!n.input(4).isEmpty() && steps == null)) {
        return Facts.of(x.dtype(), x.hasRank() ? unknownDims(x.rank()) : null);
      }
    }
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    if (starts == null || ends == null) {
      // The sliced axes lose their size; the others keep it.
      List<SymInt> shape = new ArrayList<>(x.shape());
      if (axes == null) {
        return Facts.of(x.dtype(), unknownDims(r));
      }
      for (long a : axes) {
        shape.set((int) (a < 0 ? a + r : a), SymInt.UNKNOWN);
      }
      return Facts.of(x.dtype(), shape);
    }
    List<SymInt> shape = new ArrayList<>(x.shape());
    long[] begin = new long[r];
    long[] step = new long[r];
    Arrays.fill(step, 1);
    for (int i = 0; i < starts.length; i++) {
      int a = (int) (axes == null ? i : axes[i] < 0 ? axes[i] + r : axes[i]);
      long s = steps == null ? 1 : steps[i];
      SymInt dim = x.shape().get(a);
      if (!dim.isKnown()) {
        boolean whole = s == 1 && starts[i] == 0 && ends[i] >= Integer.MAX_VALUE;
        shape.set(a, whole ? dim : SymInt.UNKNOWN);
        begin[a] = 0;
        step[a] = s;
        continue;
      }
      long d = dim.value();
      long b;
      long e;
      long count;
      if (s > 0) {
        b = clamp(starts[i] < 0 ? starts[i] + d : starts[i], 0, d);
        e = clamp(ends[i] < 0 ? ends[i] + d : ends[i], 0, d);
        count = Math.max(0, (e - b + s - 1) / s);
      } else if (s < 0) {
        b = clamp(starts[i] < 0 ? starts[i] + d : starts[i], 0, d - 1);
        e = clamp(ends[i] < 0 ? ends[i] + d : ends[i], -1, d - 1);
        count = Math.max(0, (b - e + (-s) - 1) / (-s));
      } else {
        return Facts.of(x.dtype(), null);
      }
      begin[a] = b;
      step[a] = s;
      shape.set(a, SymInt.of(count));
    }
    long[] dims = x.knownDims();
    long outCount = knownCount(shape);
    if (!x.hasContent() || dims == null || outCount < 0) {
      return Facts.of(x.dtype(), shape);
    }
    long[] strides = strides(dims);
    int[] from = new int[(int) outCount];
    long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
    for (int i = 0; i < from.length; i++) {
      long rem = i;
      long src = 0;
      for (int d = r - 1; d >= 0; d--) {
        long k = rem % outDims[d];
        rem /= outDims[d];
        src += (begin[d] + k * step[d]) * strides[d];
      }
      from[i] = (int) src;
    }
    return pick(x, shape, from);
  }

  private static long clamp(long v, long lo, long hi) {
    return Math.max(lo, Math.min(hi, v));
  }

  private List<Facts> split(Node n, Facts x) {
    int outputs = n.outputs().size();
    if (!x.hasRank()) {
      return List.of();
    }
    int r = x.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    long[] sizes = n.intsAttr("split").map(a -> a.stream().mapToLong(Long::longValue).toArray())
        .orElse(n.input(1).isEmpty() ? null : longs(n, 1));
    SymInt dim = x.shape().get(axis);
    if (sizes == null) {
      if (!n.input(1).isEmpty() && n.intsAttr("split").isEmpty()) {
        return List.of();
      }
      if (!dim.isKnown()) {
        return List.of();
      }
      long d = dim.value();
      long chunk = (d + outputs - 1) / outputs;
      sizes = new long[outputs];
      for (int i = 0; i < outputs; i++) {
        sizes[i] = Math.max(0, Math.min(chunk, d - i * chunk));
      }
    }
    List<Facts> out = new ArrayList<>();
    long[] dims = x.knownDims();
    long offset = 0;
    for (long size : sizes) {
      List<SymInt> shape = new ArrayList<>(x.shape());
      shape.set(axis, SymInt.of(size));
      if (x.hasContent() && dims != null) {
        long[] strides = strides(dims);
        long count = knownCount(shape);
        long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
        int[] from = new int[(int) count];
        for (int i = 0; i < from.length; i++) {
          long rem = i;
          long src = 0;
          for (int d = r - 1; d >= 0; d--) {
            long k = rem % outDims[d];
            rem /= outDims[d];
            src += (d == axis ? k + offset : k) * strides[d];
          }
          from[i] = (int) src;
        }
        out.add(pick(x, shape, from));
      } else {
        out.add(Facts.of(x.dtype(), shape));
      }
      offset += size;
    }
    return out;
  }

  private static Facts expand(Facts x, Facts target) {
    if (target.ints() == null || !x.hasRank()) {
      return Facts.of(x.dtype(), target.hasRank() && target.knownDims() != null && target.rank() == 1
          ? unknownDims((int) Math.max(target.knownDims()[0], x.hasRank() ? x.rank() : 0)) : null);
    }
    List<SymInt> shape = broadcast(List.of(x.shape(), Arrays.asList(target.ints())));
    if (shape == null) {
      return Facts.of(x.dtype(), null);
    }
    return broadcastContent(x, shape);
  }

  /** The facts of {@code x} broadcast to {@code shape}, with content when both are known and small. */
  private static Facts broadcastContent(Facts x, List<SymInt> shape) {
    long count = knownCount(shape);
    long[] dims = x.knownDims();
    if (!x.hasContent() || dims == null || count < 0 || count > MAX_CONTENT) {
      return Facts.of(x.dtype(), shape);
    }
    long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
    return pick(x, shape, broadcastIndex(dims, outDims));
  }

  /** For each element of a tensor of {@code outDims}, the flat position of its source in a tensor of {@code dims}. */
  static int[] broadcastIndex(long[] dims, long[] outDims) {
    int r = outDims.length;
    int off = r - dims.length;
    long[] strides = strides(dims);
    int count = (int) Arrays.stream(outDims).reduce(1, (a, b) -> a * b);
    int[] from = new int[count];
    for (int i = 0; i < count; i++) {
      long rem = i;
      long src = 0;
      for (int d = r - 1; d >= 0; d--) {
        long k = rem % outDims[d];
        rem /= outDims[d];
        int sd = d - off;
        if (sd >= 0 && dims[sd] != 1) {
          src += k * strides[sd];
        }
      }
      from[i] = (int) src;
    }
    return from;
  }

  private static Facts tile(Facts x, long[] repeats) {
    if (!x.hasRank() || repeats == null || repeats.length != x.rank()) {
      return Facts.of(x.dtype(), x.hasRank() ? unknownDims(x.rank()) : null);
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < repeats.length; d++) {
      shape.add(x.shape().get(d).times(SymInt.of(repeats[d])));
    }
    return Facts.of(x.dtype(), shape);
  }

  private Facts constantOfShape(Node n) {
    Facts shapeFacts = f(n.input(0));
    DType dtype = DType.FLOAT;
    double fill = 0;
    Optional<Attribute> value = n.attribute("value");
    if (value.isPresent() && value.get() instanceof Attribute.TensorAttr t) {
      dtype = t.value().dtype();
      fill = Facts.isInteger(dtype) ? t.value().longs()[0] : t.value().floats()[0];
    }
    if (shapeFacts.ints() == null) {
      return Facts.of(dtype, shapeFacts.knownDims() != null && shapeFacts.rank() == 1
          ? unknownDims((int) shapeFacts.knownDims()[0]) : null);
    }
    List<SymInt> shape = Arrays.asList(shapeFacts.ints());
    long count = knownCount(shape);
    if (count < 0 || count > MAX_CONTENT) {
      return Facts.of(dtype, shape);
    }
    if (Facts.isInteger(dtype)) {
      SymInt[] v = new SymInt[(int) count];
      Arrays.fill(v, SymInt.of((long) fill));
      return new Facts(dtype, shape, v, null);
    }
    double[] v = new double[(int) count];
    Arrays.fill(v, fill);
    return new Facts(dtype, shape, null, v);
  }

  private Facts range(Node n) {
    Facts start = f(n.input(0));
    Facts limit = f(n.input(1));
    Facts delta = f(n.input(2));
    DType dtype = start.dtype();
    if (dtype == null) {
      return Facts.UNKNOWN;
    }
    double[] s = scalarValue(start);
    double[] l = scalarValue(limit);
    double[] d = scalarValue(delta);
    if (s == null || l == null || d == null || d[0] == 0) {
      return Facts.of(dtype, List.of(SymInt.UNKNOWN));
    }
    long count = Math.max(0, (long) Math.ceil((l[0] - s[0]) / d[0]));
    List<SymInt> shape = List.of(SymInt.of(count));
    if (count > MAX_CONTENT) {
      return Facts.of(dtype, shape);
    }
    if (Facts.isInteger(dtype)) {
      SymInt[] v = new SymInt[(int) count];
      for (int i = 0; i < count; i++) {
        v[i] = SymInt.of((long) (s[0] + i * d[0]));
      }
      return new Facts(dtype, shape, v, null);
    }
    double[] v = new double[(int) count];
    for (int i = 0; i < count; i++) {
      v[i] = s[0] + i * d[0];
    }
    return new Facts(dtype, shape, null, round(v, dtype));
  }

  private static double[] scalarValue(Facts f) {
    if (f.reals() != null && f.reals().length == 1) {
      return f.reals();
    }
    long[] l = f.knownLongs();
    return l != null && l.length == 1 ? new double[] {l[0]} : null;
  }

  // ---- elementwise -------------------------------------------------------------------------------------------

  /** Numpy broadcasting of shapes; null when some rank is unknown or the shapes clash. */
  static List<SymInt> broadcast(List<List<SymInt>> shapes) {
    int r = 0;
    for (List<SymInt> s : shapes) {
      if (s == null) {
        return null;
      }
      r = Math.max(r, s.size());
    }
    List<SymInt> out = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      SymInt dim = SymInt.of(1);
      for (List<SymInt> s : shapes) {
        int k = d - (r - s.size());
        if (k < 0) {
          continue;
        }
        SymInt v = s.get(k);
        if (v.isKnown() && v.value() == 1) {
          continue;
        }
        if (dim.isKnown() && dim.value() == 1) {
          dim = v;
        } else if (!dim.equals(v)) {
          // A known size beats a symbol or an unknown (the model would fail otherwise); clashing symbols are unknown.
          if (v.isKnown() && !dim.isKnown()) {
            dim = v;
          } else if (!(dim.isKnown() && !v.isKnown())) {
            dim = dim.isKnown() && v.isKnown() ? dim : SymInt.UNKNOWN;
          }
        }
      }
      out.add(dim);
    }
    return out;
  }

  private Facts elementwise(Node n, List<Facts> in, DType dtype) {
    List<List<SymInt>> shapes = new ArrayList<>();
    for (Facts f : in) {
      shapes.add(f.shape());
    }
    List<SymInt> shape = broadcast(shapes);
    if (shape == null) {
      return Facts.of(dtype, null);
    }
    long count = knownCount(shape);
    if (count < 0 || count > MAX_CONTENT || in.stream().anyMatch(f -> !f.hasContent() || f.knownDims() == null)
        || dtype == null) {
      return Facts.of(dtype, shape);
    }
    long[] outDims = shape.stream().mapToLong(SymInt::value).toArray();
    List<int[]> from = new ArrayList<>();
    for (Facts f : in) {
      from.add(broadcastIndex(f.knownDims(), outDims));
    }
    return Evaluate.elementwise(n, in, from, (int) count, dtype, shape);
  }

  private static Facts unary(Node n, Facts x, DType dtype) {
    if (x.hasContent() && dtype != null) {
      Facts r = Evaluate.unary(n, x, dtype);
      if (r != null) {
        return r;
      }
    }
    return Facts.of(dtype, x.shape());
  }

  // ---- linear algebra ----------------------------------------------------------------------------------------

  private static Facts matmul(Facts a, Facts b, DType dtype) {
    if (!a.hasRank() || !b.hasRank() || a.rank() == 0 || b.rank() == 0) {
      return Facts.of(dtype, null);
    }
    List<SymInt> as = new ArrayList<>(a.shape());
    List<SymInt> bs = new ArrayList<>(b.shape());
    boolean aVec = as.size() == 1;
    boolean bVec = bs.size() == 1;
    if (aVec) {
      as.add(0, SymInt.of(1));
    }
    if (bVec) {
      bs.add(SymInt.of(1));
    }
    List<SymInt> batch = broadcast(List.of(as.subList(0, as.size() - 2), bs.subList(0, bs.size() - 2)));
    if (batch == null) {
      return Facts.of(dtype, null);
    }
    List<SymInt> shape = new ArrayList<>(batch);
    if (!aVec) {
      shape.add(as.get(as.size() - 2));
    }
    if (!bVec) {
      shape.add(bs.get(bs.size() - 1));
    }
    return Facts.of(dtype, shape);
  }

  private static Facts gemm(Node n, Facts a, Facts b) {
    if (!a.hasRank() || !b.hasRank() || a.rank() != 2 || b.rank() != 2) {
      return Facts.of(a.dtype(), unknownDims(2));
    }
    SymInt m = n.intAttr("transA", 0) != 0 ? a.shape().get(1) : a.shape().get(0);
    SymInt k = n.intAttr("transB", 0) != 0 ? b.shape().get(0) : b.shape().get(1);
    return Facts.of(a.dtype(), List.of(m, k));
  }

  private static Facts conv(Node n, Facts x, List<SymInt> w, DType dtype) {
    if (!x.hasRank() || w == null || w.size() != x.rank()) {
      return Facts.of(dtype, x.hasRank() ? unknownDims(x.rank()) : null);
    }
    List<SymInt> shape = new ArrayList<>();
    shape.add(x.shape().get(0));
    shape.add(w.get(0));
    List<SymInt> kernel = w.subList(2, w.size());
    shape.addAll(spatial(n, x, kernel));
    return Facts.of(dtype, shape);
  }

  private static Facts pool(Node n, Facts x) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    List<SymInt> kernel = n.intsAttr("kernel_shape").orElse(List.of()).stream().map(SymInt::of).toList();
    List<SymInt> shape = new ArrayList<>(x.shape().subList(0, 2));
    shape.addAll(spatial(n, x, kernel));
    return Facts.of(x.dtype(), shape);
  }

  /** Output spatial sizes of a convolution or pooling window. */
  private static List<SymInt> spatial(Node n, Facts x, List<SymInt> kernel) {
    int s = x.rank() - 2;
    List<SymInt> out = new ArrayList<>();
    String autoPad = n.stringAttr("auto_pad").orElse("NOTSET");
    for (int i = 0; i < s; i++) {
      SymInt in = x.shape().get(2 + i);
      if (!in.isKnown() || i >= kernel.size() || !kernel.get(i).isKnown()) {
        out.add(SymInt.UNKNOWN);
        continue;
      }
      final int axis = i;
      long stride = n.intsAttr("strides").map(v -> axis < v.size() ? v.get(axis) : 1L).orElse(1L);
      long dilation = n.intsAttr("dilations").map(v -> axis < v.size() ? v.get(axis) : 1L).orElse(1L);
      long k = (kernel.get(i).value() - 1) * dilation + 1;
      long size;
      if (autoPad.equals("SAME_UPPER") || autoPad.equals("SAME_LOWER")) {
        size = (in.value() + stride - 1) / stride;
      } else if (autoPad.equals("VALID")) {
        size = (in.value() - k) / stride + 1;
      } else {
        List<Long> pads = n.intsAttr("pads").orElse(List.of());
        long padBegin = axis < pads.size() ? pads.get(axis) : 0;
        long padEnd = s + axis < pads.size() ? pads.get(s + axis) : 0;
        long span = in.value() + padBegin + padEnd - k;
        size = n.intAttr("ceil_mode", 0) != 0 ? Math.floorDiv(span + stride - 1, stride) + 1
            : Math.floorDiv(span, stride) + 1;
      }
      out.add(SymInt.of(size));
    }
    return out;
  }

  private static Facts globalPool(Facts x) {
    if (!x.hasRank()) {
      return Facts.of(x.dtype(), null);
    }
    List<SymInt> shape = new ArrayList<>(x.shape().subList(0, 2));
    for (int i = 2; i < x.rank(); i++) {
      shape.add(SymInt.of(1));
    }
    return Facts.of(x.dtype(), shape);
  }

  private Facts reduce(Node n, Facts x) {
    long[] axes = attrOrInput(n, "axes", 1);
    if (!x.hasRank() || axes == null) {
      return Facts.of(x.dtype(), null);
    }
    int r = x.rank();
    boolean keep = n.intAttr("keepdims", 1) != 0;
    boolean[] reduced = new boolean[r];
    if (axes.length == 0) {
      if (n.intAttr("noop_with_empty_axes", 0) != 0) {
        return Facts.of(x.dtype(), x.shape());
      }
      Arrays.fill(reduced, true);
    }
    for (long a : axes) {
      reduced[(int) (a < 0 ? a + r : a)] = true;
    }
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      if (!reduced[d]) {
        shape.add(x.shape().get(d));
      } else if (keep) {
        shape.add(SymInt.of(1));
      }
    }
    return Facts.of(x.dtype(), shape);
  }

  private static Facts argReduce(Node n, Facts x) {
    if (!x.hasRank()) {
      return Facts.of(DType.INT64, null);
    }
    int r = x.rank();
    int axis = (int) (n.intAttr("axis", 0) < 0 ? n.intAttr("axis", 0) + r : n.intAttr("axis", 0));
    List<SymInt> shape = new ArrayList<>(x.shape());
    if (n.intAttr("keepdims", 1) != 0) {
      shape.set(axis, SymInt.of(1));
    } else {
      shape.remove(axis);
    }
    return Facts.of(DType.INT64, shape);
  }

  private Facts pad(Node n, Facts x) {
    long[] pads = n.intsAttr("pads").map(v -> v.stream().mapToLong(Long::longValue).toArray())
        .orElse(n.input(1).isEmpty() ? null : longs(n, 1));
    if (!x.hasRank() || pads == null || !n.input(3).isEmpty() || pads.length != 2 * x.rank()) {
      return Facts.of(x.dtype(), x.hasRank() ? unknownDims(x.rank()) : null);
    }
    int r = x.rank();
    List<SymInt> shape = new ArrayList<>();
    for (int d = 0; d < r; d++) {
      shape.add(x.shape().get(d).plus(SymInt.of(pads[d] + pads[r + d])));
    }
    return Facts.of(x.dtype(), shape);
  }

  static long knownCount(List<SymInt> shape) {
    if (shape == null) {
      return -1;
    }
    long n = 1;
    for (SymInt d : shape) {
      if (!d.isKnown() || d.value() < 0) {
        return -1;
      }
      if (Math.multiplyHigh(n, d.value()) != 0 || n * d.value() < 0) {
        return -1;
      }
      n *= d.value();
    }
    return n;
  }
}
