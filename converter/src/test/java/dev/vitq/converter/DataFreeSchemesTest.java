package dev.vitq.converter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.UnusedParts;
import dev.vitq.models.Value;
import dev.vitq.models.builder.EncoderFeatures;
import dev.vitq.models.builder.EncoderFeatures.Mlp;
import dev.vitq.models.builder.EncoderFeatures.Output;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.canon.DeadCode;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The schemes written without calibration ({@code w8-dynamic}, {@code fp16}) on built ViTs of every exporter
 * spelling: they run in ONNX Runtime, agree with the float model, store their weights narrow, leave nothing unread,
 * and come out byte-identical from the same model.
 */
class DataFreeSchemesTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 64, 2, 4, 128, 10);
  private static final int IMAGES = 32;
  private static final Attribute AXES = new Attribute.IntsAttr("axes", List.of(-1L), Blob.EMPTY);

  @ParameterizedTest
  @EnumSource(Spelling.class)
  void dynamicInt8RunsAgreesAndStoresInt8Weights(Spelling spelling) throws Exception {
    Model model = canonical(VitBuilder.build(CONFIG, spelling, 3));
    VitStructure vit = VitRecognizer.recognize(model, "test").require();

    DynamicQuantization.Result q = DynamicQuantization.apply(model);
    Model shipped = OrtDeploy.apply(q.model(), vit, vit.tokens());

    // Per block: q, k, v (fused or not), projection, fc1, fc2; and the head.
    long linears = model.graph().nodes().stream().filter(n -> (n.is("MatMul") || n.is("Gemm"))
        && model.graph().initializer(n.input(1)).isPresent()).count();
    assertEquals(linears, q.layers());
    assertEquals(linears, count(shipped, "DynamicQuantizeMatMul"));
    assertEquals(List.of(), UnusedParts.of(shipped));
    long floatWeightBytes = weightBytes(model, DType.FLOAT);
    long int8Bytes = weightBytes(shipped, DType.INT8);
    assertTrue(int8Bytes > 0.2 * floatWeightBytes && int8Bytes < 0.3 * floatWeightBytes,
        int8Bytes + " int8 bytes against " + floatWeightBytes + " of float32");
    assertClose(run(model), run(shipped), 0.99, 0.85);
    assertArrayEquals(OnnxWriter.toBytes(shipped), OnnxWriter.toBytes(
        OrtDeploy.apply(DynamicQuantization.apply(model).model(), vit, vit.tokens())), "deterministic");
  }

  @ParameterizedTest
  @EnumSource(Spelling.class)
  void halfPrecisionRunsAgreesAndStoresFloat16(Spelling spelling) throws Exception {
    Model model = canonical(VitBuilder.build(CONFIG, spelling, 3));
    VitStructure vit = VitRecognizer.recognize(model, "test").require();

    Model half = DeadCode.apply(HalfPrecision.apply(model, HalfPrecision.float32Outputs(vit), Set.of()));

    assertEquals(List.of(), UnusedParts.of(half));
    assertEquals(DType.FLOAT, half.graph().inputs().get(0).type().dtype(), "float32 in");
    assertEquals(DType.FLOAT, half.graph().outputs().get(0).type().dtype(), "float32 out");
    long f16 = weightBytes(half, DType.FLOAT16);
    long f32 = weightBytes(half, DType.FLOAT);
    // Only the gamma and beta of spelled-out norms stay float32 (HF-13's and tanh-18's).
    assertTrue(f32 < 0.02 * f16, f32 + " float32 bytes left beside " + f16 + " of float16");
    assertEquals(weightBytes(model, DType.FLOAT) / 2, f16 + f32 / 2, weightBytes(model, DType.FLOAT) / 100.0);
    assertClose(run(model), run(half), 0.9999, 1.0);
    assertArrayEquals(OnnxWriter.toBytes(half), OnnxWriter.toBytes(
        DeadCode.apply(HalfPrecision.apply(model, HalfPrecision.float32Outputs(vit), Set.of()))), "deterministic");
  }

  @Test
  void encodersOfEveryFamilyConvert() throws Exception {
    // DINOv2-, EVA-02- and SigLIP-like: registers and LayerScale; SwiGLU and rotary; an attention-pool head.
    for (EncoderFeatures f : List.of(new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4),
        new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0),
        new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false, false, 0))) {
      Model model = canonical(VitBuilder.build(CONFIG, Spelling.TIMM_17, f, 4));
      VitStructure vit = VitRecognizer.recognize(model, "test").require();
      float[] ref = run(model);
      assertClose(ref, run(OrtDeploy.apply(DynamicQuantization.apply(model).model(), vit, vit.tokens())), 0.99, 0);
      assertClose(ref, run(DeadCode.apply(HalfPrecision.apply(model, HalfPrecision.float32Outputs(vit), Set.of()))),
          0.9999, 0);
    }
  }

  /**
   * A spelled-out layer norm over activations near 3500: the square of the centred input passes float16's 65504. Kept
   * in float32, the norm reads float32 values and gives the float result. (ONNX Runtime's CPU provider has no float16
   * kernels for these operators and runs the whole chain in float32 either way, so the overflow itself shows only on
   * providers with float16 kernels; the control is therefore the types the graph asks for.)
   */
  @Test
  void spelledOutNormsComputeInFloat32() throws Exception {
    Model norm = spelledOutNorm();
    float[] x = new float[2 * 8];
    for (int i = 0; i < x.length; i++) {
      x[i] = 1000f * (i % 8) - 3500f;
    }
    Set<String> all = Set.copyOf(norm.graph().nodes().stream().map(Node::output).toList());

    Model wide = HalfPrecision.apply(norm, all, Set.of());
    Model narrow = HalfPrecision.apply(norm, Set.of(), Set.of());

    float[] ref = run(norm, x);
    float[] got = run(wide, x);
    for (int i = 0; i < ref.length; i++) {
      assertEquals(ref[i], got[i], 2e-3f, "float32 norm, element " + i);
    }
    assertEquals(DType.FLOAT, wide.graph().initializer("two").orElseThrow().dtype());
    assertEquals(DType.FLOAT, wide.graph().initializer("eps").orElseThrow().dtype());
    assertTrue(castTo(wide, DType.FLOAT).size() == 1 && castTo(wide, DType.FLOAT16).size() == 1,
        "one Cast into the float32 norm (after the entry's), none back: its output is the model's");
    assertEquals(DType.FLOAT16, narrow.graph().initializer("two").orElseThrow().dtype(), "the control");
    assertEquals(List.of(), castTo(narrow, DType.FLOAT).stream().filter(c -> !c.output().equals("y")).toList());
  }

  private static List<Node> castTo(Model m, DType type) {
    return m.graph().nodes().stream().filter(n -> n.is("Cast") && n.intAttr("to", 0) == type.code()).toList();
  }

  @Test
  void keepsHalfPrecisionEdgesWhenAsked() throws Exception {
    Model norm = spelledOutNorm();
    Model half = HalfPrecision.apply(norm, Set.of(), Set.of("x", "y"));
    assertEquals(DType.FLOAT16, half.graph().inputs().get(0).type().dtype());
    assertEquals(DType.FLOAT16, half.graph().outputs().get(0).type().dtype());
    assertEquals(0, count(half, "Cast"));
  }

  /**
   * {@code y = (x - mean) / sqrt(mean((x - mean)^2) + eps)} over the last axis of [2, 8], as Hugging Face spells it.
   */
  private static Model spelledOutNorm() {
    Graph g = new Graph("norm", List.of(
        Node.of("mean", "ReduceMean", List.of("x"), List.of("mu"), AXES),
        Node.of("centre", "Sub", List.of("x", "mu"), List.of("d")),
        Node.of("square", "Pow", List.of("d", "two"), List.of("d2")),
        Node.of("variance", "ReduceMean", List.of("d2"), List.of("var"), AXES),
        Node.of("epsilon", "Add", List.of("var", "eps"), List.of("ve")),
        Node.of("root", "Sqrt", List.of("ve"), List.of("sd")),
        Node.of("divide", "Div", List.of("d", "sd"), List.of("y"))),
        List.of(Value.of("x", TensorType.of(DType.FLOAT, 2, 8))),
        List.of(Value.of("y", TensorType.of(DType.FLOAT, 2, 8))),
        List.of(Tensor.ofFloats("two", List.of(), new float[] {2f}),
            Tensor.ofFloats("eps", List.of(), new float[] {1e-5f})),
        List.of(), Blob.EMPTY);
    return new Model(8, List.of(new OpsetId("", 13)), "test", "1", "", 0, "", List.of(), g, Blob.EMPTY);
  }

  private static Model canonical(Model m) {
    return Canonicalizer.apply(m, 32, 32);
  }

  private static long count(Model m, String op) {
    return m.graph().nodes().stream().filter(n -> n.opType().equals(op)).count();
  }

  private static long weightBytes(Model m, DType type) {
    return m.graph().initializers().stream().filter(t -> t.dtype() == type && t.elementCount() > 1)
        .mapToLong(t -> t.elementCount() * type.bits() / 8).sum();
  }

  /** Per image: cosine of the outputs at least {@code minCosine}, and the argmax the same on that share of images. */
  private static void assertClose(float[] ref, float[] got, double minCosine, double minAgreement) {
    int width = ref.length / IMAGES;
    int agree = 0;
    for (int i = 0; i < IMAGES; i++) {
      double dot = 0;
      double na = 0;
      double nb = 0;
      int am = 0;
      int bm = 0;
      for (int j = 0; j < width; j++) {
        float a = ref[i * width + j];
        float b = got[i * width + j];
        dot += a * b;
        na += a * a;
        nb += b * b;
        am = a > ref[i * width + am] ? j : am;
        bm = b > got[i * width + bm] ? j : bm;
      }
      double cos = dot / Math.sqrt(na * nb);
      assertTrue(cos >= minCosine, "image " + i + ": cosine " + cos);
      agree += am == bm ? 1 : 0;
    }
    assertTrue(agree >= minAgreement * IMAGES, agree + " of " + IMAGES + " images agree");
  }

  private static float[] run(Model m) throws Exception {
    float[] pixels = new float[IMAGES * 3 * 32 * 32];
    Random rng = new Random(5);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {IMAGES, 3, 32, 32}, pixels);
    try (InferenceSession s = InferenceSession.of(m, InferenceSession.Config.defaults())) {
      String out = m.graph().outputs().get(0).name();
      return s.run(Map.of(VitBuilder.INPUT, x), List.of(out)).get(out).floats();
    }
  }

  private static float[] run(Model m, float[] x) throws Exception {
    HostTensor in = HostTensor.ofFloats(new long[] {2, 8}, x);
    try (InferenceSession s = InferenceSession.of(m, InferenceSession.Config.defaults())) {
      return s.run(Map.of("x", in), List.of("y")).get("y").floats();
    }
  }
}
