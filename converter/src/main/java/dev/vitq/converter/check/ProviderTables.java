package dev.vitq.converter.check;

import static dev.vitq.converter.check.OpTable.when;
import static dev.vitq.models.DType.BOOL;
import static dev.vitq.models.DType.FLOAT;
import static dev.vitq.models.DType.FLOAT16;
import static dev.vitq.models.DType.INT16;
import static dev.vitq.models.DType.INT32;
import static dev.vitq.models.DType.INT4;
import static dev.vitq.models.DType.INT64;
import static dev.vitq.models.DType.INT8;
import static dev.vitq.models.DType.UINT16;
import static dev.vitq.models.DType.UINT4;
import static dev.vitq.models.DType.UINT8;

import dev.vitq.converter.check.OpRule.Condition;
import dev.vitq.models.DType;
import java.util.List;
import java.util.Set;

/**
 * What each execution provider takes, one table per provider, as ONNX Runtime 1.2x documents and implements it:
 * the NNAPI and CoreML operator lists ONNX Runtime ships with its mobile usability checker
 * ({@code nnapi_supported_ops.md}, {@code coreml_supported_mlprogram_ops.md}), the QNN provider's operator builders
 * ({@code qnn/builder/op_builder_factory.cc}) and XNNPACK's node checker and kernels
 * ({@code xnnpack/detail/node_support_checker.cc}). Operators not in a table run on the CPU. The facts are kept as
 * data so that the quantizer's targets can read the same tables later.
 *
 * <p>Conditions test what vitq can see before a session exists: constant inputs, ranks, shapes, attributes. Where a
 * provider's limit depends on the device (NNAPI feature levels, HTP architectures), the table takes the newest
 * devices' behaviour and says so.
 */
final class ProviderTables {
  private ProviderTables() {}

  private static final Set<DType> FLOATS = Set.of(FLOAT);
  private static final Set<DType> HALF_OR_FLOAT = Set.of(FLOAT, FLOAT16);
  private static final Set<DType> ANY = Set.of();

  static OpTable of(ExecutionProvider ep) {
    return switch (ep) {
      case NNAPI -> nnapi();
      case COREML -> coreml();
      case QNN -> qnn();
      case XNNPACK -> xnnpack();
    };
  }

  /**
   * Android NNAPI: float32 and uint8 (asymmetric) quantized tensors, fixed shapes; the input type checked is input
   * 0's. Quantized units are the QLinear operators and the QDQ forms of Conv, MatMul, Gemm, Add, Mul, Transpose,
   * Reshape, Softmax, Concat, AveragePool and Resize; a Conv may have int8 (symmetric, per-channel) weights, nothing
   * else int8. Shape operators and reductions take rank 1 to 4 (the NNAPI operations they map to); a MatMul is a
   * 2-D product with constant B, or a float batched product of equal leading dimensions (NNAPI feature level 3).
   */
  static OpTable nnapi() {
    Condition upTo4 = rank(0, "takes rank 1 to 4", 1, 2, 3, 4);
    return OpTable.builder(FLOATS).staticShapes().quantized(Set.of(UINT8), Set.of(UINT8))
        .ops("Abs", "BatchNormalization", "Div", "Elu", "Exp", "Floor", "Identity", "LeakyRelu", "Log", "LRN", "Max",
            "Min", "Neg", "Pow", "PRelu", "Relu", "Sin", "Sqrt", "Sub", "Tanh", "Flatten")
        .qdqOps("Add", "Mul", "Softmax")
        .op("ReduceMean", upTo4)
        .op("Sigmoid", upTo4)
        .op("Slice", upTo4)
        .qdq("MatMul", when("a 2-D product with constant B, or a float batched product of equal leading dimensions",
            ProviderTables::nnapiMatMul))
        .qdq("Transpose", upTo4)
        .qdq("Reshape", upTo4)
        .op("Cast", Set.of(FLOAT, INT32, INT64, UINT8))
        .qdq("Concat", upTo4)
        .op("Clip", constantFrom(1, "min and max"))
        .qdq("AveragePool", rank(0, "only 2-D pooling", 4))
        .op("GlobalAveragePool", rank(0, "only 2-D pooling", 4))
        .op("GlobalMaxPool", rank(0, "only 2-D pooling", 4))
        .op("MaxPool", rank(0, "only 2-D pooling", 4))
        .qdq("Conv", Set.of(UINT8, INT8), rank(0, "only 2-D convolution", 4), constantFrom(1, "weights and bias"))
        .op("DepthToSpace", when("only DCR mode", v -> !"CRD".equals(v.node().stringAttr("mode").orElse("DCR"))))
        .op("Gather", Set.of(FLOAT, INT32, INT64, UINT8),
            when("indices must be constant unless int32", v -> v.constant(1) || v.dtype(1).orElse(INT32) == INT32))
        .qdq("Gemm", rank(0, "A must be 2-D", 2), rank(1, "B must be 2-D", 2),
            when("only transA=0, alpha=1, beta=1", v -> v.node().intAttr("transA", 0) == 0
                && v.node().floatAttr("alpha", 1f) == 1f && v.node().floatAttr("beta", 1f) == 1f),
            when("a non-constant B needs transB=1", v -> v.constant(1) || v.node().intAttr("transB", 0) == 1))
        .op("Pad", when("only constant mode", v -> "constant".equals(v.node().stringAttr("mode").orElse("constant"))),
            constantFrom(1, "pads and constant_value"))
        .qdq("Resize", rank(0, "only 2-D resizing (rank 4)", 4))
        .op("Split", constantFrom(1, "split"), when("the splits must divide the axis evenly",
            ProviderTables::evenSplit))
        .op("Squeeze", upTo4, axesConstant())
        .op("Unsqueeze", upTo4, axesConstant())
        .op("QuantizeLinear", constantFrom(1, "scale and zero point"))
        .op("DequantizeLinear", constantFrom(1, "scale and zero point"))
        .op("QLinearConv", rank(0, "only 2-D convolution", 4), constantFrom(1, "weights, bias, scales and zero points"))
        .op("QLinearMatMul", constantScalesOf(1, 2, 4, 5, 6, 7))
        .op("com.microsoft:QLinearAdd", constantScalesOf(1, 2, 4, 5, 6, 7))
        .op("com.microsoft:QLinearAveragePool", rank(0, "only 2-D pooling", 4), constantScalesOf(1, 2, 3, 4))
        .op("com.microsoft:QLinearSigmoid", constantScalesOf(1, 2, 3, 4))
        .build();
  }

  /**
   * Apple CoreML as an ML Program (the format for current iOS and macOS): float32 and float16, rank 5 at most,
   * dynamic shapes allowed. The CoreML provider has no quantized operators and looks at each node alone, not at QDQ
   * units: QuantizeLinear and DequantizeLinear run on the CPU, so a QDQ model is cut at every one of them.
   */
  static OpTable coreml() {
    Set<DType> withInts = Set.of(FLOAT, FLOAT16, INT32, INT64);
    return OpTable.builder(HALF_OR_FLOAT).maxRank(5).nodeByNode()
        .ops("Add", "Sub", "Mul", "Div", "ArgMax", "Ceil", "Cos", "Sin", "Elu", "Erf", "Exp", "Gelu",
            "GroupNormalization", "HardSigmoid", "Identity", "InstanceNormalization", "LayerNormalization",
            "LeakyRelu", "Max", "PRelu", "Reciprocal", "ReduceSum", "ReduceMean", "ReduceMax", "Relu", "Round",
            "Sigmoid", "Softmax", "Softplus", "Sqrt", "Tanh", "Clip", "Resize")
        .op("Cast", withInts)
        .op("Concat", withInts)
        .op("Reshape", withInts)
        .op("Shape", ANY)
        .op("Squeeze", withInts)
        .op("Unsqueeze", withInts)
        .op("Transpose", withInts)
        .op("And", Set.of(BOOL))
        .op("AveragePool", rank(0, "only 2-D pooling", 4))
        .op("MaxPool", rank(0, "only 2-D pooling", 4))
        .op("GlobalAveragePool", rank(0, "only 2-D pooling", 4))
        .op("GlobalMaxPool", rank(0, "only 2-D pooling", 4))
        .op("Conv", rank(0, "only 1-D and 2-D convolution", 3, 4), constantFrom(2, "bias"))
        .op("ConvTranspose", constantFrom(1, "weight and bias"))
        .op("DepthToSpace")
        .op("GatherND", when("batch_dims must be 0", v -> v.node().intAttr("batch_dims", 0) == 0))
        .op("Gemm", constantFrom(1, "B"))
        .op("GridSample", rank(0, "4-D input", 4))
        .op("MatMul", when("transA is not supported", v -> v.node().intAttr("transA", 0) == 0))
        .op("Pow", when("both inputs must be float32",
            v -> v.dtype(0).orElse(FLOAT) == FLOAT && v.dtype(1).orElse(FLOAT) == FLOAT))
        .op("Slice", withInts, constantFrom(1, "starts, ends, axes and steps"))
        .op("Split", withInts, constantFrom(1, "split"))
        .op("Tile", withInts)
        .op("Where", Set.of(BOOL), when("X and Y must be float or float16",
            v -> HALF_OR_FLOAT.contains(v.dtype(1).orElse(FLOAT))))
        .op("com.microsoft:QuickGelu")
        .op("com.microsoft:FusedConv", rank(0, "only 1-D and 2-D convolution", 3, 4))
        .build();
  }

  /**
   * Qualcomm QNN on the HTP (NPU) backend: fixed shapes, rank 5 at most; quantized units of any listed operator with
   * 8- or 16-bit activations and 4-, 8- or 16-bit weights; float32 runs as float16 (ONNX Runtime's default
   * {@code enable_htp_fp16_precision}). The provider looks operators up by name, so com.microsoft Gelu and
   * FusedMatMul are taken too.
   */
  static OpTable qnn() {
    Set<DType> data = Set.of(FLOAT, FLOAT16, INT32, INT64, UINT8, INT8, UINT16, INT16, BOOL);
    OpTable.Builder b = OpTable.builder(data).staticShapes().maxRank(5).domainBlind()
        .quantized(Set.of(UINT8, INT8, UINT16, INT16), Set.of(UINT8, INT8, UINT16, INT16, UINT4, INT4));
    for (String op : List.of("Add", "Asin", "Atan", "Mul", "Abs", "And", "Ceil", "Cos", "Sign", "Div", "Equal", "Exp",
        "Floor", "Greater", "GreaterOrEqual", "LeakyRelu", "Less", "LessOrEqual", "Log", "Max", "Min", "Neg", "Not",
        "Or", "Pow", "PRelu", "Relu", "Gelu", "Elu", "Round", "Where", "ScatterND", "Sigmoid", "Sin", "Sqrt", "Sub",
        "Sum", "Tanh", "Concat", "HardSwish", "HardSigmoid", "DepthToSpace", "SpaceToDepth", "GridSample",
        "LpNormalization", "ScatterElements", "Softmax", "LogSoftmax", "Cast", "ReduceMax", "ReduceMean", "ReduceMin",
        "ReduceProd", "ReduceSum", "ReduceL2", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gemm", "Gather",
        "GatherElements", "ArgMax", "ArgMin", "Clip", "Slice", "Split", "Resize", "Upsample", "TopK", "Tile",
        "InstanceNormalization", "BatchNormalization", "LayerNormalization", "RMSNormalization", "LRN", "Transpose",
        "Reciprocal", "Pad", "Expand", "Einsum", "MatMul", "Mean", "LSTM", "CumSum", "GatherND", "Mod",
        "ThresholdedRelu", "Inverse", "FusedMatMul")) {
      b.qdq(op);
    }
    return b.qdq("Conv", rank(0, "only 1-D, 2-D and 3-D convolution", 3, 4, 5))
        .qdq("ConvTranspose", rank(0, "only 1-D, 2-D and 3-D convolution", 3, 4, 5))
        .qdq("AveragePool", rank(0, "only 1-D and 2-D pooling", 3, 4))
        .qdq("MaxPool", rank(0, "only 1-D and 2-D pooling", 3, 4))
        .qdq("GlobalAveragePool", rank(0, "only 1-D and 2-D pooling", 3, 4))
        .qdq("GlobalMaxPool", rank(0, "only 1-D and 2-D pooling", 3, 4))
        .op("QuantizeLinear", constantFrom(1, "scale and zero point"))
        .op("DequantizeLinear", constantFrom(1, "scale and zero point"))
        .build();
  }

  /**
   * XNNPACK: a CPU library, so its nodes share memory with ONNX Runtime's CPU kernels and a cut costs no copy.
   * float32 (float16 where built with it); uint8 and int8 quantized units of Conv, pooling, Softmax and Resize.
   * Weights must be constant.
   */
  static OpTable xnnpack() {
    return OpTable.builder(HALF_OR_FLOAT).quantized(Set.of(UINT8, INT8), Set.of(UINT8, INT8))
        .ops("Add", "Sub", "Mul", "Div", "Abs", "Round", "Ceil", "Floor", "Sqrt", "Neg", "Max", "Min", "Elu",
            "LeakyRelu", "Sigmoid", "Tanh", "HardSwish")
        .op("Transpose", Set.of(FLOAT, FLOAT16, UINT8, INT8))
        .qdq("Conv", rank(0, "only 2-D convolution", 4), constantFrom(1, "weights and bias"))
        .op("ConvTranspose", rank(0, "only 2-D convolution", 4), constantFrom(1, "weights and bias"))
        .qdq("MaxPool", rank(0, "only 2-D pooling", 4))
        .qdq("AveragePool", rank(0, "only 2-D pooling", 4))
        .qdq("GlobalAveragePool", rank(0, "only 2-D pooling", 4))
        .qdq("Softmax", when("only over the last axis", ProviderTables::softmaxLastAxis))
        .qdq("Resize", rank(0, "only 2-D resizing (rank 4)", 4))
        .op("MatMul", constantFrom(1, "B"), rank(1, "B must be 2-D", 2))
        .op("Gemm", constantFrom(1, "B and C"))
        .op("QLinearConv", rank(0, "only 2-D convolution", 4), constantFrom(1, "weights, bias, scales and zero points"))
        .build();
  }

  // ---- conditions shared by the tables ------------------------------------------------------------------------

  private static Condition rank(int input, String text, int... ranks) {
    return when(text, v -> v.rankIs(input, ranks));
  }

  private static Condition constantFrom(int from, String what) {
    return when(what + " must be constant", v -> v.constantFrom(from));
  }

  private static Condition constantScalesOf(int... inputs) {
    return when("scales and zero points must be constant", v -> {
      for (int i : inputs) {
        if (!v.constantOrAbsent(i)) {
          return false;
        }
      }
      return true;
    });
  }

  /** Squeeze and Unsqueeze take axes as an input from opset 13 on; NNAPI needs them constant. */
  private static Condition axesConstant() {
    return when("axes must be constant", v -> v.constantOrAbsent(1));
  }

  /** NNAPI's MatMul: FULLY_CONNECTED (2-D A, constant 2-D B) or its float batched decomposition. */
  private static boolean nnapiMatMul(NodeView v) {
    int a = v.rank(0);
    int b = v.rank(1);
    if (a < 0 || b < 0) {
      return true;
    }
    if (a == 2 && b == 2 && v.constant(1)) {
      return true;
    }
    if (v.quantizedUnit() || a < 3 || a != b || v.dtype(0).orElse(FLOAT) != FLOAT) {
      return false;
    }
    long[] da = v.dims(0).orElseThrow();
    long[] db = v.dims(1).orElseThrow();
    return java.util.Arrays.equals(da, 0, a - 2, db, 0, b - 2);
  }

  private static boolean evenSplit(NodeView v) {
    if (!v.node().input(1).isEmpty() || v.node().intsAttr("split").isPresent()) {
      return true; // explicit sizes: ONNX Runtime checks they add up, which a valid model does
    }
    long parts = v.node().outputs().size();
    int axis = (int) v.node().intAttr("axis", 0);
    return v.dims(0).map(d -> {
      int a = axis < 0 ? axis + d.length : axis;
      return a < 0 || a >= d.length || d[a] < 0 || d[a] % parts == 0;
    }).orElse(true);
  }

  private static boolean softmaxLastAxis(NodeView v) {
    long axis = v.node().intAttr("axis", v.opset() >= 13 ? -1 : 1);
    int r = v.rank(0);
    return r < 0 || axis == -1 || axis == r - 1;
  }
}
