package dev.vitq.converter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.Scheme;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The integer-kernel pass: same network, linear layers as fused kernels with their biases, scalings folded. */
class IntegerKernelsTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "HF_13", "TANH_18", "TORCH_EXPORT_18"})
  void fusesLinearLayersAndKeepsTheNetwork(Spelling spelling) throws Exception {
    fusesLinearLayersAndKeepsTheNetwork(spelling, Scheme.W8A8);
  }

  /** Int4 weights are stored packed behind a Cast to int8, which the kernel reads. */
  @ParameterizedTest
  @EnumSource(value = Scheme.class, names = {"W4A8", "W4A4"})
  void fusesInt4Weights(Scheme scheme) throws Exception {
    fusesLinearLayersAndKeepsTheNetwork(Spelling.TIMM_17, scheme);
  }

  private void fusesLinearLayersAndKeepsTheNetwork(Spelling spelling, Scheme scheme) throws Exception {
    Model lowered = lowered(spelling, scheme, QdqLowering.Mode.DEPLOY);
    Model fused = IntegerKernels.apply(lowered);

    List<Node> kernels = fused.graph().nodes().stream().filter(n -> n.opType().equals("MatMulIntegerToFloat")).toList();
    GraphIndex low = GraphIndex.of(lowered.graph());
    long linears = lowered.graph().nodes().stream().filter(n -> n.is("MatMul"))
        .filter(n -> low.producer(n.input(1), "DequantizeLinear").flatMap(d -> low.constant(d.input(0))
            .or(() -> low.producer(d.input(0), "Cast").flatMap(c -> low.constant(c.input(0))))).isPresent())
        .filter(n -> low.consumers(n.output()).stream().allMatch(c -> c.is("Add")))
        .count();
    int perBlock = spelling == Spelling.TIMM_17 ? 4 : 6;
    assertTrue(linears >= perBlock * CONFIG.depth(), "q, k, v (fused or not), proj, fc1, fc2 in every block");
    assertEquals(linears, kernels.size(), "every linear layer with a bias");
    GraphIndex idx = GraphIndex.of(fused.graph());
    for (Node k : kernels) {
      assertEquals(7, k.inputs().size(), "with its bias");
      assertTrue(idx.constant(k.input(1)).isPresent() || idx.producer(k.input(1), "Cast").isPresent(), "weight");
      assertTrue(idx.consumers(k.output()).stream().noneMatch(n -> n.is("Add")
          && n.inputs().stream().anyMatch(i -> idx.constant(i).map(t -> t.rank() == 1).orElse(false))),
          "no bias Add left behind");
    }
    assertTrue(fused.opsets().stream().anyMatch(o -> o.domain().equals(MsDomain.NAME)));

    float[] before = run(lowered);
    float[] after = run(fused);
    for (int i = 0; i < before.length; i++) {
      assertEquals(before[i], after[i], 1e-3f * (1 + Math.abs(before[i])), "logit " + i);
    }
  }

  /** GELU spelled with erf (timm) or tanh: its last Mul feeds a quantizer too, and must stay for ORT's fusion. */
  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "TANH_18"})
  void foldsTheQueryScalingButNotGelu(Spelling spelling) throws Exception {
    Model lowered = lowered(spelling, Scheme.W8A8, QdqLowering.Mode.DEPLOY);
    Model fused = IntegerKernels.apply(lowered);
    // timm scales the queries before their quantizer; this tanh spelling scales the scores, which are not quantized.
    int folded = spelling == Spelling.TIMM_17 ? CONFIG.depth() : 0;
    assertEquals(count(lowered, "Mul") - folded, count(fused, "Mul"),
        "query scalings folded into their quantizers; GELU's last Mul kept for ONNX Runtime's fusion");
  }

  @Test
  void leavesSimulatedQuantizersAlone() throws Exception {
    Model simulated = lowered(Spelling.TIMM_17, Scheme.W8A8, QdqLowering.Mode.SIMULATE);
    assertSame(simulated, IntegerKernels.apply(simulated), "scales are inputs and weights float: nothing to fuse");
  }

  private record Recognized(Model model, VitStructure vit) {}

  private static Recognized recognized(Spelling spelling) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, spelling, 3), 32, 32);
    return new Recognized(model, VitRecognizer.recognize(model, "test").require());
  }

  /** A small model of that spelling lowered with a fixed plan. */
  private static Model lowered(Spelling spelling, Scheme scheme, QdqLowering.Mode mode) throws Exception {
    Recognized r = recognized(spelling);
    return QdqLowering.lower(r.model(), FixedPlans.plan(r.model(), r.vit(), scheme), mode);
  }

  private static long count(Model m, String op) {
    return m.graph().nodes().stream().filter(n -> n.is(op)).count();
  }

  private static float[] run(Model m) throws Exception {
    float[] pixels = new float[4 * 3 * 32 * 32];
    Random rng = new Random(5);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {4, 3, 32, 32}, pixels);
    try (InferenceSession s = InferenceSession.of(m, InferenceSession.Config.defaults())) {
      return s.run(Map.of(VitBuilder.INPUT, x), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
  }
}
