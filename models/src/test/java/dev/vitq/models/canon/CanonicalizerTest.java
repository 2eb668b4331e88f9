package dev.vitq.models.canon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.onnx.OnnxWriter;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class CanonicalizerTest {
  private static Model model(GraphBuilder b, Value input, String output) {
    Graph g = new Graph("g", b.nodes(), List.of(input),
        List.of(Value.of(output, new TensorType(DType.FLOAT, null))), b.initializers(), List.of(), Blob.EMPTY);
    return new Model(8, List.of(new OpsetId("", 17)), "test", "1", "", 0, "", List.of(), g, Blob.EMPTY);
  }

  private static Set<String> ops(Model m) {
    return m.graph().nodes().stream().map(Node::opType).collect(Collectors.toSet());
  }

  private static float[] run(Model m, float[] x, long[] shape) throws Exception {
    return OrtRunner.run(OnnxWriter.toBytes(m), m.graph().inputs().get(0).name(), x, shape);
  }

  /** x [batch, 6, 8] reshaped to [batch, 6, 2, 4] by a target built from Shape(x), as TorchScript exports write it. */
  @Test
  void aBatchDependentReshapeTargetBecomesAConstantThatCopiesTheBatchAndTokens() throws Exception {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String batch = b.op("Gather", List.of(b.op("Shape", List.of("x")), b.scalarLong(0)), Attribute.of("axis", 0L));
    String target = b.op("Concat", List.of(b.op("Unsqueeze", List.of(batch, b.longs(0))), b.longs(6), b.longs(2),
        b.longs(4)), Attribute.of("axis", 0L));
    String y = b.op("Relu", List.of(b.op("Reshape", List.of("x", target))));
    Model m = model(b, Value.of("x", TensorType.of(DType.FLOAT, "batch", 6, 8)), y);

    Model c = Canonicalizer.apply(m, 0, 0);

    assertEquals(Set.of("Reshape", "Relu"), ops(c));
    GraphIndex idx = GraphIndex.of(c.graph());
    Node reshape = c.graph().nodes().get(0);
    // Entries equal to the input's dimension are copies, so the target holds for any number of tokens.
    assertArrayEquals(new long[] {0, 0, 2, 4}, idx.longs(reshape.input(1)).orElseThrow());
    long[] shape = {3, 6, 8};
    float[] in = OrtRunner.randomFloats(3 * 6 * 8, 1);
    assertArrayEquals(run(m, in, shape), run(c, in, shape));
  }

  /** nn.MultiheadAttention's [tokens, batch * heads, headDim]: the one batch-dependent entry becomes -1. */
  @Test
  void aTargetWithTheBatchTimesTheHeadsSolvesForIt() throws Exception {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String t = b.op("Transpose", List.of("x"), Attribute.ofInts("perm", 1, 0, 2));
    String shape = b.op("Shape", List.of(t));
    String tokens = b.op("Gather", List.of(shape, b.scalarLong(0)), Attribute.of("axis", 0L));
    String batch = b.op("Gather", List.of(shape, b.scalarLong(1)), Attribute.of("axis", 0L));
    String width = b.op("Gather", List.of(shape, b.scalarLong(2)), Attribute.of("axis", 0L));
    String bh = b.op("Mul", List.of(batch, b.scalarLong(2)));
    String hd = b.op("Div", List.of(width, b.scalarLong(2)));
    String target = b.op("Concat", List.of(b.op("Unsqueeze", List.of(tokens, b.longs(0))),
        b.op("Unsqueeze", List.of(bh, b.longs(0))), b.op("Unsqueeze", List.of(hd, b.longs(0)))),
        Attribute.of("axis", 0L));
    String y = b.op("Reshape", List.of(t, target));
    Model m = model(b, Value.of("x", TensorType.of(DType.FLOAT, "batch", 6, 8)), y);

    Model c = Canonicalizer.apply(m, 0, 0);

    assertEquals(Set.of("Transpose", "Reshape"), ops(c));
    Node reshape = c.graph().nodes().get(1);
    assertArrayEquals(new long[] {0, -1, 4}, GraphIndex.of(c.graph()).longs(reshape.input(1)).orElseThrow());
    float[] in = OrtRunner.randomFloats(2 * 6 * 8, 2);
    assertArrayEquals(run(m, in, new long[] {2, 6, 8}), run(c, in, new long[] {2, 6, 8}));
  }

  @Test
  void identitiesDropoutsNoOpCastsAndNanGuardsPassTheirInputOn() throws Exception {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String v = b.op("Identity", List.of("x"));
    v = b.op("", "Dropout", List.of(v), 2).get(0);
    v = b.op("Cast", List.of(v), Attribute.of("to", (long) DType.FLOAT.code()));
    String p = b.op("Softmax", List.of(v), Attribute.of("axis", -1L));
    String guarded = b.op("Where", List.of(b.op("IsNaN", List.of(p)), b.scalar(0f), p));
    String y = b.op("MatMul", List.of(guarded, "x"));
    Model m = model(b, Value.of("x", TensorType.of(DType.FLOAT, 1, 5, 5)), y);

    Model c = Canonicalizer.apply(m, 0, 0);

    assertEquals(List.of("Softmax", "MatMul"), c.graph().nodes().stream().map(Node::opType).toList());
    assertEquals("x", c.graph().nodes().get(0).input(0));
    assertEquals(p, c.graph().nodes().get(1).input(0));
    float[] in = OrtRunner.randomFloats(25, 3);
    assertArrayEquals(run(m, in, new long[] {1, 5, 5}), run(c, in, new long[] {1, 5, 5}));
  }

  /** PyTorch's scaled-dot-product attention multiplies queries and keys each by sqrt(scale). */
  @Test
  void aScaleSplitAcrossQueriesAndKeysMovesAfterTheScores() throws Exception {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String scale = b.op("Sqrt", List.of(b.op("Div", List.of(b.scalar(1f), b.op("Sqrt", List.of(b.scalar(8f)))))));
    String q = b.op("Mul", List.of("x", scale));
    String k = b.op("Mul", List.of(b.op("Transpose", List.of("x"), Attribute.ofInts("perm", 0, 2, 1)), scale));
    String y = b.op("Softmax", List.of(b.op("MatMul", List.of(q, k))), Attribute.of("axis", -1L));
    Model m = model(b, Value.of("x", TensorType.of(DType.FLOAT, 2, 5, 8)), y);

    Model c = Canonicalizer.apply(m, 0, 0);

    assertEquals(List.of("Transpose", "MatMul", "Mul", "Softmax"),
        c.graph().nodes().stream().map(Node::opType).toList());
    Node matmul = c.graph().nodes().get(1);
    assertEquals("x", matmul.input(0));
    float factor = GraphIndex.of(c.graph()).scalar(c.graph().nodes().get(2).input(1)).orElseThrow();
    assertEquals(1 / Math.sqrt(8), factor, 1e-7);
    float[] in = OrtRunner.randomFloats(80, 4);
    float[] before = run(m, in, new long[] {2, 5, 8});
    float[] after = run(c, in, new long[] {2, 5, 8});
    assertTrue(OrtRunner.maxAbsDiff(before, after) < 1e-6, "same scores up to rounding");
  }

  @ParameterizedTest
  @EnumSource(Spelling.class)
  void everyBuilderSpellingComputesTheSameAfterCanonicalising(Spelling spelling) throws Exception {
    Model m = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), spelling, 7);
    Model c = Canonicalizer.apply(m, 0, 0);
    assertTrue(c.graph().nodes().size() <= m.graph().nodes().size());
    assertFalse(ops(c).contains("Identity"));
    float[] x = OrtRunner.randomImages(2, 32, 5);
    long[] shape = {2, 3, 32, 32};
    assertTrue(OrtRunner.maxAbsDiff(run(m, x, shape), run(c, x, shape)) <= 1e-5);
  }

  /** Optimum exports every input dimension as dynamic; the position embedding says the size the model was made for. */
  @Test
  void aDynamicImageSizeIsFixedToTheOneThePositionEmbeddingImplies() throws Exception {
    Model m = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), Spelling.DYNAMO_20, 7);
    Value in = m.graph().inputs().get(0);
    Value dynamic = in.withType(new TensorType(DType.FLOAT, List.of(Dim.symbol("batch_size"),
        Dim.symbol("num_channels"), Dim.symbol("height"), Dim.symbol("width"))));
    Model d = m.withGraph(m.graph().withInputs(List.of(dynamic)));

    Model c = Canonicalizer.apply(d, 0, 0);

    List<Dim> dims = c.graph().inputs().get(0).type().shape();
    assertEquals(List.of(32L, 32L), List.of(dims.get(2).size(), dims.get(3).size()));
    assertEquals("batch_size", dims.get(0).symbol());
    Model asked = Canonicalizer.apply(d, 48, 40);
    assertEquals(48, asked.graph().inputs().get(0).type().shape().get(2).size());
    assertEquals(40, asked.graph().inputs().get(0).type().shape().get(3).size());
  }

  @Test
  void halfPrecisionWidensToFloat32AndGetsItsInterfaceBack() throws Exception {
    Model m = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), Spelling.TIMM_17, 7);
    Graph g = m.graph();
    List<Tensor> half = g.initializers().stream().map(t -> t.dtype() == DType.FLOAT
        ? ConstantFolding.ofReals(t.name(), DType.FLOAT16, t.dims(), toDoubles(t.floats())) : t).toList();
    Model h = m.withGraph(g.withInitializers(half).withInputs(g.inputs().stream()
        .map(v -> v.withType(new TensorType(DType.FLOAT16, v.type().shape()))).toList()));
    assertTrue(Float32.isHalf(h));

    Model wide = Float32.apply(h);

    assertFalse(Float32.isHalf(wide));
    assertTrue(wide.graph().initializers().stream().noneMatch(t -> t.dtype() == DType.FLOAT16));
    float[] x = OrtRunner.randomImages(1, 32, 6);
    float[] y = run(wide, x, new long[] {1, 3, 32, 32});
    assertTrue(OrtRunner.maxAbsDiff(y, run(m, x, new long[] {1, 3, 32, 32})) < 0.05, "float16 weights, rounded");
    Model back = Float32.withInterfaceOf(wide, h);
    assertEquals(DType.FLOAT16, back.graph().inputs().get(0).type().dtype());
    assertEquals(h.graph().inputs().get(0).name(), back.graph().inputs().get(0).name());
    assertEquals("Cast", back.graph().nodes().get(0).opType());
  }

  private static double[] toDoubles(float[] v) {
    double[] d = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = v[i];
    }
    return d;
  }
}
