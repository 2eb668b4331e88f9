package dev.vitq.converter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.DType;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.Role;
import dev.vitq.quantizer.Scheme;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What each {@link Target} writes: standard operators in QDQ form for every target but the CPU, each provider's facts
 * honoured, the same predictions whether ONNX Runtime fuses the QDQ groups or not, and the CPU form unchanged.
 */
class DeployTargetsTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);
  private static final int IMAGES = 8;

  static Stream<Arguments> standardTargets() {
    List<Arguments> out = new ArrayList<>();
    for (Target t : Target.ALL) {
      if (t.standardOnly()) {
        for (Scheme s : List.of(Scheme.W8A8, Scheme.W4A8, Scheme.W4A4, Scheme.W8A16, Scheme.W4A16)) {
          if (s.activationBits() <= t.maxActivationBits()) {
            out.add(Arguments.of(t, s));
          }
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest
  @MethodSource("standardTargets")
  void writesStandardQdqThatRunsTheSameFusedOrNot(Target target, Scheme scheme) throws Exception {
    Built m = build(scheme);
    Model deployed = deploy(m, target);

    for (OpsetId o : deployed.opsets()) {
      assertTrue(o.domain().isEmpty() || o.domain().equals("ai.onnx"), "imports " + o);
    }
    GraphIndex index = GraphIndex.of(deployed.graph());
    for (Node n : deployed.graph().nodes()) {
      assertTrue(n.domain().isEmpty(), n.domain() + "." + n.opType());
      if (n.is("MatMul") || n.is("Gemm") || n.is("Conv")) {
        for (int i = 0; i < 2; i++) {
          assertTrue(index.producer(n.input(i), "DequantizeLinear").isPresent(),
              n.opType() + " '" + n.name() + "' input " + i + " comes from a DequantizeLinear");
        }
      }
      if (n.is("QuantizeLinear")) {
        // A QDQ pair: levels go straight to DequantizeLinear (or leave the model), never through a Clip.
        for (Node r : index.consumers(n.output())) {
          assertTrue(r.is("DequantizeLinear"), "QuantizeLinear '" + n.name() + "' is read by " + r.opType());
        }
      }
    }
    int[] unfused = argmax(run(deployed, false));
    int[] fused = argmax(run(deployed, true));
    assertArrayEquals(unfused, fused, "ONNX Runtime's QDQ fusions change no prediction");
  }

  @ParameterizedTest
  @MethodSource("standardTargets")
  void honoursTheProvidersFacts(Target target, Scheme scheme) throws Exception {
    Model deployed = deploy(build(scheme), target);
    GraphIndex index = GraphIndex.of(deployed.graph());
    for (Node dq : deployed.graph().nodes()) {
      if (!dq.is("DequantizeLinear")) {
        continue;
      }
      Tensor levels = index.constant(dq.input(0)).orElse(null);
      Tensor scale = index.constant(dq.input(1)).orElseThrow(() -> new AssertionError("constant scale"));
      Tensor zero = index.constant(dq.input(2)).orElseThrow(() -> new AssertionError("explicit zero point"));
      if (levels != null) {
        assertTrue(levels.dtype() == DType.INT8 || levels.dtype() == DType.INT4 && target.int4Weights(),
            "weight levels " + levels.dtype());
        assertTrue(allZero(zero), "symmetric weights: zero point 0");
        boolean linear = index.consumers(dq.output()).stream().anyMatch(r -> r.is("MatMul") || r.is("Gemm"));
        if (linear && !target.perChannelLinearWeights()) {
          assertEquals(1, scale.elementCount(), "per-tensor MatMul/Gemm weights");
        }
      } else {
        assertTrue(zero.dtype() == DType.UINT8 || zero.dtype() == DType.UINT16 && target.maxActivationBits() == 16,
            "activation levels " + zero.dtype());
        if (!target.perAxisActivations()) {
          assertEquals(1, scale.elementCount(), "per-tensor activations");
        }
      }
    }
  }

  @Test
  void eightBitTargetsRefuseSixteenBitActivations() throws Exception {
    Built m = build(Scheme.W8A16);
    for (Target t : List.of(Target.NNAPI, Target.COREML, Target.XNNPACK)) {
      VitqException e = assertThrows(VitqException.class, () -> Deploy.plan(m.model, m.plan, t));
      assertTrue(e.getMessage().contains("16"), e.getMessage());
    }
  }

  @Test
  void theCpuTargetIsTheOrtDeployPass() throws Exception {
    Built m = build(Scheme.W8A8);
    assertSame(m.plan, Deploy.plan(m.model, m.plan, Target.CPU));
    Model lowered = QdqLowering.lower(m.model, m.plan, QdqLowering.Mode.DEPLOY);
    Model cpu = Deploy.apply(lowered, m.vit, m.vit.tokens(), Target.CPU);
    assertEquals(OrtDeploy.apply(lowered, m.vit, m.vit.tokens()), cpu);
    assertTrue(cpu.graph().nodes().stream().anyMatch(n -> n.domain().equals("com.microsoft")));
  }

  @Test
  void sixteenBitActivationsOnTheCpuStayOffTheEightBitKernel() throws Exception {
    Built m = build(Scheme.W8A16);
    Model cpu = deploy(m, Target.CPU);
    assertFalse(cpu.graph().nodes().stream().anyMatch(n -> n.is("MatMulIntegerToFloat")),
        "MatMulIntegerToFloat takes 8-bit activations only");
    assertEquals(21, cpu.opset(""), "uint16 QuantizeLinear is opset 21");
    argmax(run(cpu, true));
  }

  @Test
  void sixteenBitActivationsAreCloserToFloat() throws Exception {
    Built a8 = build(Scheme.W8A8);
    Built a16 = build(Scheme.W8A16);
    float[] reference = run(a8.model, false);
    double error8 = meanSquared(reference, run(deploy(a8, Target.QDQ), true));
    double error16 = meanSquared(reference, run(deploy(a16, Target.QDQ), true));
    assertTrue(error16 < error8 / 4, "W8A16 " + error16 + " against W8A8 " + error8);
  }

  @Test
  void clippedLevelsBecomeAnExactPair() throws Exception {
    // W4A4 clips 8-bit levels to 4 bits between Q and DQ; the QDQ form clips in float between two exact pairs.
    Built m = build(Scheme.W4A4);
    Model lowered = QdqLowering.lower(m.model, m.plan, QdqLowering.Mode.DEPLOY);
    assertTrue(lowered.graph().nodes().stream().anyMatch(n -> n.is("Clip")));
    assertArrayEquals(run(lowered, false), run(deploy(m, Target.QDQ), false), 1e-5f);
  }

  @Test
  void providerOrtFilesKeepTheQdqGroupsAndLoad(@TempDir Path dir) throws Exception {
    // INT4 weights (W4A8 for QNN): the ORT format holds no INT4 tensor, so its twin stores int8 levels.
    Built m = build(Scheme.W4A8);
    Model qnn = deploy(m, Target.QNN);
    assertTrue(qnn.graph().initializers().stream().anyMatch(t -> t.dtype() == DType.INT4));
    Path ort = ModelFiles.write(qnn, dir.resolve("qnn.onnx"), Format.ORT, Target.QNN).get(0).path();
    try (InferenceSession s = InferenceSession.of(ort, new InferenceSession.Config(1, false))) {
      assertEquals(VitBuilder.OUTPUT, s.describe().graph().outputs().get(0).name());
    }
    String ops = ModelFiles.requiredOperators(List.of(qnn), List.of("qnn.ort"), Target.QNN);
    assertFalse(ops.contains("com.microsoft"), "a provider's ORT file is saved before the CPU fusions: " + ops);
    assertTrue(ops.contains("DequantizeLinear") && ops.contains("MatMul"), ops);
    assertTrue(ModelFiles.requiredOperators(List.of(deploy(m, Target.CPU)), List.of("cpu.ort"))
        .contains("com.microsoft"));
  }

  // ---- helpers -----------------------------------------------------------------------------------------------

  private record Built(Model model, VitStructure vit, QuantPlan plan) {}

  /** A builder ViT with a fixed plan whose activation ranges are those of the tensors on random images. */
  private static Built build(Scheme scheme) throws VitqException {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 3), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    QuantPlan plan = FixedPlans.plan(model, vit, scheme);
    // The image at 8 bits per colour channel, as calibration makes it: the per-axis case the providers refuse.
    List<PlanEntry> image = new ArrayList<>();
    for (PlanEntry e : plan.entries()) {
      if (e.role() == Role.CONV_INPUT && scheme.activationBits() >= 8) {
        image.add(e.with(new Quantizer(Quantizer.Kind.UNIFORM, 8, false, 1, new float[] {0.03f, 0.031f, 0.029f},
            new int[] {128, 126, 130})));
      }
    }
    return new Built(model, vit, plan.withUpdated(image));
  }

  private static Model deploy(Built m, Target target) throws VitqException {
    QuantPlan fitted = Deploy.plan(m.model, m.plan, target);
    return Deploy.apply(QdqLowering.lower(m.model, fitted, QdqLowering.Mode.DEPLOY), m.vit, m.vit.tokens(), target);
  }

  private static float[] run(Model m, boolean optimize) throws Exception {
    float[] pixels = new float[IMAGES * 3 * 32 * 32];
    Random rng = new Random(5);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {IMAGES, 3, 32, 32}, pixels);
    try (InferenceSession s = InferenceSession.of(m, new InferenceSession.Config(1, optimize))) {
      return s.run(Map.of(VitBuilder.INPUT, x), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
  }

  private static int[] argmax(float[] logits) {
    int classes = logits.length / IMAGES;
    int[] out = new int[IMAGES];
    for (int i = 0; i < IMAGES; i++) {
      for (int c = 1; c < classes; c++) {
        if (logits[i * classes + c] > logits[i * classes + out[i]]) {
          out[i] = c;
        }
      }
    }
    return out;
  }

  private static double meanSquared(float[] a, float[] b) {
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      sum += (a[i] - b[i]) * (a[i] - b[i]);
    }
    return sum / a.length;
  }

  private static boolean allZero(Tensor t) {
    ByteBuffer raw = t.data();
    while (raw.hasRemaining()) {
      if (raw.get() != 0) {
        return false;
      }
    }
    return true;
  }
}
