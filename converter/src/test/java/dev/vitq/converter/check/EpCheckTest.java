package dev.vitq.converter.check;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.converter.check.CheckReport.CpuNode;
import dev.vitq.converter.check.CheckReport.Kind;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Which nodes each provider takes, how they partition, and why the rest go to the CPU. */
class EpCheckTest {
  private static Model model(List<Node> nodes, List<Tensor> initializers, TensorType input, String output) {
    Graph g = new Graph("g", nodes, List.of(Value.of("x", input)), List.of(Value.of(output, null)), initializers,
        List.of(), Blob.EMPTY);
    return new Model(9, List.of(new OpsetId("", 17), new OpsetId("com.microsoft", 1)), "test", "", "", 0, "", List.of(),
        g, Blob.EMPTY);
  }

  private static Node node(String op, List<String> in, String out) {
    return Node.of(out + "_node", op, in, List.of(out));
  }

  private static Node ms(String op, List<String> in, String out) {
    return new Node(out + "_node", op, "com.microsoft", in, List.of(out), List.of(), Blob.EMPTY);
  }

  private static final TensorType FLOAT_1x8 = TensorType.of(DType.FLOAT, 1, 8);

  /** Relu → Erf → Relu: NNAPI has no Erf, so the two Relus run in two partitions with the CPU between them. */
  @Test
  void oneUnsupportedNodeInTheMiddleGivesTwoPartitions() {
    Model m = model(List.of(node("Relu", List.of("x"), "a"), node("Erf", List.of("a"), "b"),
        node("Relu", List.of("b"), "y")), List.of(), FLOAT_1x8, "y");

    CheckReport r = EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 0);

    assertEquals(3, r.nodes());
    assertEquals(2, r.supportedNodes());
    assertEquals(2, r.partitions());
    assertEquals(List.of(1, 1), r.partitionSizes());
    assertEquals(List.of(new CpuNode("b_node", "ai.onnx:Erf", 1, Kind.OPERATOR, "operator not supported")),
        r.cpuNodes());
    // CoreML has Erf: one partition of all three.
    CheckReport coreml = EpCheck.check(m, "m.onnx", ExecutionProvider.COREML, 0);
    assertEquals(1, coreml.partitions());
    assertEquals(3, coreml.supportedNodes());
  }

  /** An unsupported node beside the path, reading the graph input only, cuts nothing. */
  @Test
  void anUnsupportedNodeOffThePathDoesNotCut() {
    Model m = model(List.of(node("Relu", List.of("x"), "a"), node("Erf", List.of("x"), "side"),
        node("Relu", List.of("a"), "b"), node("Add", List.of("b", "side"), "y")), List.of(), FLOAT_1x8, "y");

    CheckReport r = EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 0);

    // The Erf reads nothing of the group, so the CPU runs it first and the Add still joins the Relus.
    assertEquals(1, r.partitions());
    assertEquals(List.of(3), r.partitionSizes());
  }

  @ParameterizedTest
  @EnumSource(ExecutionProvider.class)
  void contribOperatorsGoToTheCpu(ExecutionProvider ep) {
    // Sigmoid: every provider has it (XNNPACK takes Relu only fused into a Conv).
    Model m = model(List.of(node("Sigmoid", List.of("x"), "a"), ms("FastGelu", List.of("a"), "b"),
        node("Sigmoid", List.of("b"), "y")), List.of(), FLOAT_1x8, "y");

    CheckReport r = EpCheck.check(m, "m.onnx", ep, 0);

    assertEquals(List.of(new CpuNode("b_node", "com.microsoft:FastGelu", 1, Kind.OPERATOR,
        "contrib operator, not supported")), r.cpuNodes());
    assertEquals(2, r.partitions());
  }

  /** QNN looks operators up by name, so com.microsoft Gelu is its Gelu; NNAPI has neither. */
  @Test
  void qnnTakesContribGeluByName() {
    Model m = model(List.of(ms("Gelu", List.of("x"), "y")), List.of(), FLOAT_1x8, "y");
    assertEquals(1, EpCheck.check(m, "m.onnx", ExecutionProvider.QNN, 0).supportedNodes());
    assertEquals(0, EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 0).supportedNodes());
  }

  /** DQ(x) and DQ(W) → MatMul → Q, with the weights in {@code weights}: one quantized unit of four nodes. */
  private static Model qdqMatMul(DType weights) {
    List<Tensor> init = new ArrayList<>();
    init.add(Tensor.ofFloats("s", List.of(), new float[] {0.1f}));
    init.add(Tensor.ofBytes("zp", DType.UINT8, List.of(), new byte[] {(byte) 128}));
    init.add(Tensor.ofBytes("w", weights, List.of(8L, 8L), new byte[(int) weights.byteSize(64)]));
    init.add(Tensor.ofFloats("ws", List.of(), new float[] {0.01f}));
    List<Node> nodes = List.of(
        node("QuantizeLinear", List.of("x", "s", "zp"), "xq"),
        node("DequantizeLinear", List.of("xq", "s", "zp"), "xd"),
        node("DequantizeLinear", List.of("w", "ws"), "wd"),
        node("MatMul", List.of("xd", "wd"), "m"),
        node("QuantizeLinear", List.of("m", "s", "zp"), "mq"),
        node("DequantizeLinear", List.of("mq", "s", "zp"), "y"));
    return model(nodes, init, FLOAT_1x8, "y");
  }

  @Test
  void nnapiTakesUint8QdqButNotInt8OrInt4Weights() {
    CheckReport u8 = EpCheck.check(qdqMatMul(DType.UINT8), "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(6, u8.supportedNodes());
    assertEquals(1, u8.partitions());

    for (DType w : List.of(DType.INT8, DType.INT4)) {
      CheckReport r = EpCheck.check(qdqMatMul(w), "m.onnx", ExecutionProvider.NNAPI, 0);
      assertEquals(1, r.cpuNodes().size(), r.toString());
      CpuNode unit = r.cpuNodes().get(0);
      assertEquals("ai.onnx:MatMul", unit.op());
      assertEquals(4, unit.nodes(), "the DQs, the MatMul and its Q go to the CPU together");
      assertEquals(Kind.TYPE, unit.kind());
      assertTrue(unit.reason().startsWith(w.name().toLowerCase() + " weights"), unit.reason());
      assertEquals(2, r.partitions(), "the input's Q/DQ and the output's DQ stay, cut apart by the unit");
    }
  }

  @Test
  void qnnTakesInt4WeightsAndCoremlNoQdqAtAll() {
    CheckReport qnn = EpCheck.check(qdqMatMul(DType.INT4), "m.onnx", ExecutionProvider.QNN, 0);
    assertTrue(qnn.cpuNodes().isEmpty(), qnn.toString());
    assertEquals(1, qnn.partitions());

    // CoreML looks at each node alone: the MatMul is a float MatMul it takes; every Q and DQ goes to the CPU.
    CheckReport coreml = EpCheck.check(qdqMatMul(DType.UINT8), "m.onnx", ExecutionProvider.COREML, 0);
    assertEquals(1, coreml.supportedNodes(), coreml.toString());
    Set<String> cpuOps = coreml.cpuNodes().stream().map(CpuNode::op).collect(Collectors.toSet());
    assertEquals(Set.of("ai.onnx:QuantizeLinear", "ai.onnx:DequantizeLinear"), cpuOps);
    assertEquals(5, coreml.cpuNodes().size());
  }

  /**
   * Q → Transpose → DQ → Relu...: ONNX Runtime carries the quantization through the Transpose before partitioning,
   * so a model whose Transpose reads a DequantizeLinear gains a Q/DQ pair after it.
   */
  @Test
  void dequantizationPropagatesThroughDataMovement() {
    List<Tensor> init = List.of(Tensor.ofFloats("s", List.of(), new float[] {0.1f}),
        Tensor.ofBytes("zp", DType.UINT8, List.of(), new byte[] {(byte) 128}));
    Node t = Node.of("t", "Transpose", List.of("xd"), List.of("xt"),
        new dev.vitq.models.Attribute.IntsAttr("perm", List.of(1L, 0L), Blob.EMPTY));
    Model m = model(List.of(node("QuantizeLinear", List.of("x", "s", "zp"), "xq"),
        node("DequantizeLinear", List.of("xq", "s", "zp"), "xd"), t, node("Sigmoid", List.of("xt"), "y")), init,
        TensorType.of(DType.FLOAT, 8, 8), "y");

    CheckReport r = EpCheck.check(m, "m.onnx", ExecutionProvider.QNN, 0);

    assertEquals(6, r.nodes(), "Q, DQ, Transpose, and the Q, DQ pair propagated after it, Sigmoid");
    assertEquals(6, r.supportedNodes());
    assertEquals(1, r.partitions());
  }

  @Test
  void floatTypesFollowEachProvidersTable() {
    Model half = model(List.of(node("Relu", List.of("x"), "y")), List.of(), TensorType.of(DType.FLOAT16, 1, 8), "y");
    CheckReport nnapi = EpCheck.check(half, "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(List.of(new CpuNode("y_node", "ai.onnx:Relu", 1, Kind.TYPE, "float16 input; takes float")),
        nnapi.cpuNodes());
    assertEquals(1, EpCheck.check(half, "m.onnx", ExecutionProvider.COREML, 0).supportedNodes());
  }

  @Test
  void staticShapeProvidersNeedTheBatchFixed() {
    Model m = model(List.of(node("Relu", List.of("x"), "y")), List.of(), TensorType.of(DType.FLOAT, "batch", 8), "y");

    CheckReport dynamic = EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(Kind.SHAPE, dynamic.cpuNodes().get(0).kind());
    assertEquals(null, dynamic.batch());
    CheckReport fixed = EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 1);
    assertEquals(1, fixed.supportedNodes());
    assertEquals(1, fixed.batch());
    // CoreML takes dynamic shapes.
    assertEquals(1, EpCheck.check(m, "m.onnx", ExecutionProvider.COREML, 0).supportedNodes());
  }

  @Test
  void constantsFoldAwayBeforeProvidersSeeTheGraph() {
    Model m = model(List.of(node("Shape", List.of("x"), "s"), node("Cast", List.of("s"), "sf"),
        node("Relu", List.of("x"), "y")), List.of(), FLOAT_1x8, "y");
    CheckReport r = EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(1, r.nodes(), "the Shape of a fixed-shape input and the Cast of it fold (and nothing reads them)");
    assertEquals(2, r.folded());
  }

  /**
   * A built ViT with erf GELU: QNN takes everything but the Erf of each block's MLP, and each Erf cuts the graph
   * once; CoreML takes the Erf too.
   */
  @Test
  void builtVitOnQnnIsCutOnlyAtEachErf() {
    int depth = 3;
    Model m = VitBuilder.build(new VitConfig(32, 8, 3, 32, depth, 2, 64, 5), Spelling.TIMM_17, 3);

    CheckReport qnn = EpCheck.check(m, "vit.onnx", ExecutionProvider.QNN, 1);

    Set<String> cpuOps = qnn.cpuNodes().stream().map(CpuNode::op).collect(Collectors.toSet());
    assertEquals(Set.of("ai.onnx:Erf"), cpuOps, qnn.cpu().toString());
    assertEquals(depth, qnn.cpuNodes().size());
    assertEquals(depth + 1, qnn.partitions());
    assertEquals(qnn.supportedNodes(), qnn.partitionSizes().stream().mapToInt(Integer::intValue).sum());

    CheckReport coreml = EpCheck.check(m, "vit.onnx", ExecutionProvider.COREML, 1);
    assertFalse(coreml.cpuNodes().stream().anyMatch(c -> c.op().equals("ai.onnx:Erf")));
    assertTrue(coreml.partitions() < qnn.partitions(), coreml.cpu().toString());
  }

  /**
   * A linear layer on tokens, MatMul [1,4,8]x[8,8] then Add of a bias: ONNX Runtime fuses it into Reshape, Gemm,
   * Reshape before partitioning, and NNAPI takes that; the same MatMul without its bias is a 3-D by 2-D product,
   * which NNAPI does not take.
   */
  @Test
  void nnapiTakesALinearLayerAsTheGemmOnnxRuntimeMakesOfIt() {
    List<Tensor> init = List.of(Tensor.ofFloats("w", List.of(8L, 8L), new float[64]),
        Tensor.ofFloats("b", List.of(8L), new float[8]));
    TensorType tokens = TensorType.of(DType.FLOAT, 1, 4, 8);
    Model linear = model(List.of(node("MatMul", List.of("x", "w"), "m"), node("Add", List.of("m", "b"), "y")), init,
        tokens, "y");
    CheckReport fusedGemm = EpCheck.check(linear, "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(3, fusedGemm.nodes(), "Reshape, Gemm, Reshape");
    assertEquals(3, fusedGemm.supportedNodes());
    assertEquals(1, fusedGemm.partitions());

    Model bare = model(List.of(node("MatMul", List.of("x", "w"), "y")), init, tokens, "y");
    CheckReport r = EpCheck.check(bare, "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(0, r.supportedNodes());
    assertEquals(Kind.CONDITION, r.cpuNodes().get(0).kind());
  }

  /** NNAPI's TRANSPOSE takes rank 4 at most; QNN's takes rank 5. */
  @Test
  void rankLimitsArePerProvider() {
    Node t = Node.of("t", "Transpose", List.of("x"), List.of("y"),
        new dev.vitq.models.Attribute.IntsAttr("perm", List.of(2L, 0L, 3L, 1L, 4L), Blob.EMPTY));
    Model m = model(List.of(t), List.of(), TensorType.of(DType.FLOAT, 1, 5, 3, 2, 4), "y");
    CheckReport nnapi = EpCheck.check(m, "m.onnx", ExecutionProvider.NNAPI, 0);
    assertEquals(List.of(new CpuNode("t", "ai.onnx:Transpose", 1, Kind.CONDITION, "takes rank 1 to 4")),
        nnapi.cpuNodes());
    assertEquals(1, EpCheck.check(m, "m.onnx", ExecutionProvider.QNN, 0).supportedNodes());
  }

  /**
   * A reshape target built from x's shape: with the batch symbolic, ONNX Runtime folds the Gather of the fixed
   * width but not the one of the batch; with the batch fixed, the whole target folds.
   */
  @Test
  void shapeArithmeticFoldsWhereTheDimensionsItReadsAreFixed() {
    List<Tensor> init = List.of(Tensor.ofLongs("i0", List.of(), new long[] {0}),
        Tensor.ofLongs("i1", List.of(), new long[] {1}), Tensor.ofLongs("axes", List.of(1L), new long[] {0}));
    Model m = model(List.of(node("Shape", List.of("x"), "s"), node("Gather", List.of("s", "i0"), "g0"),
        node("Gather", List.of("s", "i1"), "g1"), node("Unsqueeze", List.of("g0", "axes"), "u0"),
        node("Unsqueeze", List.of("g1", "axes"), "u1"), node("Concat", List.of("u0", "u1"), "target"),
        node("Reshape", List.of("x", "target"), "y")), init, TensorType.of(DType.FLOAT, "batch", 8), "y");

    CheckReport symbolic = EpCheck.check(m, "m.onnx", ExecutionProvider.COREML, 0);
    assertEquals(5, symbolic.nodes(), "Shape, the batch's Gather and Unsqueeze, Concat, Reshape");
    assertEquals(2, symbolic.folded());
    CheckReport fixed = EpCheck.check(m, "m.onnx", ExecutionProvider.COREML, 1);
    assertEquals(1, fixed.nodes());
    assertEquals(6, fixed.folded());
  }
}
