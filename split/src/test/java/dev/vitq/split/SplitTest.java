package dev.vitq.split;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.converter.Target;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.TensorStats;
import dev.vitq.converter.FixedPlans;
import dev.vitq.converter.OrtDeploy;
import dev.vitq.models.Model;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.Role;
import dev.vitq.quantizer.ScaleInit;
import dev.vitq.quantizer.Scheme;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Device then cloud computes what the single quantized model computes with its residual stream quantized at the
 * boundary, to the last bit of the logits; the single model itself quantizes the stream for the norm only.
 */
class SplitTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 3, 2, 64, 5);

  @ParameterizedTest
  @ValueSource(ints = {1, 2})
  void deviceThenCloudIsTheModelWithItsStreamQuantizedAtTheBoundary(int k) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 4), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    QuantPlan plan = withChannelFactors(FixedPlans.plan(model, vit, Scheme.W8A8));
    Split.Parts parts = Split.of(model, model, vit, plan, k, new Reduction.None(), false, null, Target.CPU);

    HostTensor images = images();
    float[] split;
    try (InferenceSession device = InferenceSession.of(parts.device(), InferenceSession.Config.defaults());
        InferenceSession cloud = InferenceSession.of(parts.cloud(), InferenceSession.Config.defaults())) {
      HostTensor tokens = device.run(Map.of(VitBuilder.INPUT, images), List.of(Bundle.TOKENS)).get(Bundle.TOKENS);
      split = cloud.run(Map.of(Bundle.TOKENS, tokens), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
    String boundary = vit.blocks().get(k).input();
    float[] single = logits(OrtDeploy.apply(QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY,
        Set.of(boundary)), vit, vit.tokens()), images);
    assertArrayEquals(single, split, 1e-5f);
    float[] normOnly = logits(OrtDeploy.apply(QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY), vit,
        vit.tokens()), images);
    assertFalse(Arrays.equals(normOnly, split), "the single model carries the stream on in float");
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2})
  void exportGivesTheBoundaryChannelFactorsAndLeavesTheRestAsCalibrated(int k) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 4), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    QuantPlan plan = FixedPlans.plan(model, vit, Scheme.W8A8);
    String boundary = vit.blocks().get(k).input();
    // The stream: 17 tokens whose channel 5 is 20 times wider than the others.
    TensorStats stats = new TensorStats(boundary);
    float[] values = new float[17 * CONFIG.embedDim()];
    Random rng = new Random(k);
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) rng.nextGaussian() * (i % CONFIG.embedDim() == 5 ? 20 : 1);
    }
    stats.add(values, CONFIG.embedDim());
    QuantPlan split = SplitExport.boundaryWithFactors(new Calibrator.Result(plan, Map.of(boundary, stats)), vit, k);
    Quantizer q = split.entry(boundary).orElseThrow().quantizer();
    float base = Float.MAX_VALUE;
    for (float s : q.scales()) {
      base = Math.min(base, s);
    }
    float min = base;
    long atBase = java.util.stream.IntStream.range(0, CONFIG.embedDim()).filter(c -> q.scale(c) == min).count();
    assertTrue(q.perChannel() && q.scale(5) >= 8 * base && atBase >= CONFIG.embedDim() / 2,
        "the wide channel gets a power-of-two factor, most keep the base scale: " + Arrays.toString(q.scales()));
    for (PlanEntry e : plan.entries()) {
      if (!e.tensor().equals(boundary)) {
        assertEquals(e, split.entry(e.tensor()).orElseThrow(), e.tensor());
      }
    }
  }

  /** The plan with each layer-norm input widened by a power-of-two factor on one channel, as calibration does. */
  private static QuantPlan withChannelFactors(QuantPlan plan) {
    List<PlanEntry> norms = new ArrayList<>();
    for (PlanEntry e : plan.entries()) {
      if (e.role() == Role.NORM_INPUT) {
        float[] lo = new float[CONFIG.embedDim()];
        float[] hi = new float[CONFIG.embedDim()];
        Arrays.fill(lo, -3);
        Arrays.fill(hi, 3);
        hi[5] = 20;
        norms.add(e.with(ScaleInit.powerOfTwoChannels(Quantizer.asymmetric(8, -3, 3), lo, hi, 2, 6)));
      }
    }
    assertEquals(2 * CONFIG.depth(), norms.size(), "two norms per block; the final norm's input is not quantized "
        + "when the head reads only the class token");
    return plan.withUpdated(norms);
  }

  private static HostTensor images() {
    float[] pixels = new float[6 * 3 * 32 * 32];
    Random rng = new Random(8);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    return HostTensor.ofFloats(new long[] {6, 3, 32, 32}, pixels);
  }

  private static float[] logits(Model m, HostTensor images) throws Exception {
    try (InferenceSession s = InferenceSession.of(m, InferenceSession.Config.defaults())) {
      return s.run(Map.of(VitBuilder.INPUT, images), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
  }
}
