package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Mixed plans from one calibration: uniform points reproduce the uniform schemes, mixed ones lower and run. */
class MixedPrecisionTest {
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);

  @TempDir static Path images;
  static Model model;
  static VitStructure vit;
  static ImageDataset data;
  static Calibrator.Result calibrated;
  static MixedPrecision space;

  @BeforeAll
  static void calibrate() throws Exception {
    model = VitBuilder.build(new VitConfig(32, 8, 3, 32, 3, 2, 64, 5), Spelling.TIMM_17, 11);
    vit = VitRecognizer.recognize(model, "test").require();
    TestImages.write(images, 24);
    data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess").orElseThrow()));
    calibrated = Calibrator.calibrate(model, vit.input(), MixedPrecision.sites(vit), "sha", data,
        new Calibrator.Settings(Scheme.W8A8, Method.MSE, 8, 3, SESSION), Progress.NONE);
    space = MixedPrecision.of(model, vit, MixedPrecision.sites(vit), "sha", calibrated.stats(), 24,
        data.preprocessing(), Method.MSE, 3, SESSION);
  }

  /**
   * The uniform scheme's plan with layer-norm inputs quantized, with their factors, as every group of the space
   * quantizes them.
   */
  private static QuantPlan uniform(Scheme scheme) throws Exception {
    java.util.Set<Technique> techniques = java.util.EnumSet.copyOf(Technique.defaults(scheme));
    techniques.remove(Technique.FLOAT_NORM_INPUT);
    techniques.add(Technique.NORM_INPUT_FACTORS);
    return Calibrator.calibrate(model, vit.input(), QuantSites.of(vit, scheme, techniques), "sha", data,
        new Calibrator.Settings(scheme, Method.MSE, 8, 3, SESSION, techniques), Progress.NONE).plan();
  }

  @Test
  void w8a8ReadsLayerNormInputsInOneRangeAndFactorsWidenTheirWideChannels() throws Exception {
    List<PlanEntry> norms = calibrated.plan().entries().stream().filter(e -> e.role() == Role.NORM_INPUT).toList();
    // Two per block; the final norm's input is not quantized, as the head reads only its class token.
    assertEquals(2 * 3, norms.size());
    assertTrue(norms.stream().noneMatch(e -> e.quantizer().perChannel()), "W8A8's defaults: one range");
    assertTrue(QdqLowering.lower(model, calibrated.plan(), QdqLowering.Mode.DEPLOY).graph().initializers().stream()
        .noneMatch(t -> t.name().endsWith("_channel_factor")), "no multiplications around the norms' pairs");
    List<PlanEntry> widened = uniform(Scheme.W8A8).entries().stream().filter(e -> e.role() == Role.NORM_INPUT)
        .toList();
    assertTrue(widened.stream().allMatch(e -> QdqLowering.channelFactors(e) != null), "with norm-input-factors");
    assertTrue(Technique.defaults(Scheme.W4A8).contains(Technique.NORM_INPUT_FACTORS));
  }

  @Test
  void uniformPointsAreTheUniformSchemesFromOneCalibration() throws Exception {
    assertEquals(3 * 4, space.searchedWeights(), "qkv, proj, fc1 and fc2 of three blocks");
    assertEquals(3 + 2, space.activationGroups(), "embedding, three blocks, head");
    assertEquals(uniform(Scheme.W8A8).entries(), space.plan(space.uniform(8, 8)).entries());
    assertEquals(uniform(Scheme.W4A8).entries(), space.plan(space.uniform(4, 8)).entries());
    assertEquals(uniform(Scheme.W4A4).entries(), space.plan(space.uniform(4, 4)).entries());
    // W6A6's activations with 8-bit weights: W6 is stored in int8 too, so W8A6 is its size.
    QuantPlan w6a6 = uniform(Scheme.W6A6);
    QuantPlan w8a6 = space.plan(space.uniform(8, 6));
    for (int i = 0; i < w6a6.entries().size(); i++) {
      PlanEntry e = w6a6.entries().get(i);
      if (e.role().isActivation()) {
        assertEquals(e, w8a6.entries().get(i));
      } else {
        assertEquals(8, w8a6.entries().get(i).quantizer().bits());
      }
    }
  }

  /** Blocks alternate between A8 without ln-reparam and A4/A6 with it; weights alternate between 4 and 8 bits. */
  private static MixedPrecision.Genes mixed() {
    int[] w = new int[space.searchedWeights()];
    for (int i = 0; i < w.length; i++) {
      w[i] = i % 3 == 0 ? 4 : 8;
    }
    return new MixedPrecision.Genes(w, new int[] {8, 4, 8, 6, 4});
  }

  @Test
  void aMixedPlanLowersRunsAndAgreesWithItsSimulation() throws Exception {
    QuantPlan plan = space.plan(mixed());
    assertEquals(Scheme.AUTO, plan.scheme());
    assertEquals("auto", plan.search());
    // Each entry carries its group's bits: block 2 (index 1) at A8, block 1 at A4 with per-channel post-norm inputs.
    for (PlanEntry e : plan.entries()) {
      if (e.role() == Role.LINEAR_INPUT && e.block() == 0) {
        assertTrue(LayerNormReparam.applies(e) || e.quantizer().bits() == 4, e.toString());
      }
      if (e.role() == Role.LINEAR_INPUT && e.block() == 1) {
        assertEquals(8, e.quantizer().bits());
        assertTrue(!LayerNormReparam.applies(e), "no ln-reparam at A8: " + e);
      }
    }
    assertEquals(plan, QuantPlan.fromJson(plan.toJson()), "a mixed plan reads back");

    Model deployed = QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY);
    Model simulated = QdqLowering.lower(model, plan, QdqLowering.Mode.SIMULATE);
    float[] pixels = new float[4 * 3 * 32 * 32];
    Random rng = new Random(1);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {4, 3, 32, 32}, pixels);
    float[] dep;
    float[] sim;
    float[] fp;
    try (InferenceSession s = InferenceSession.of(deployed, SESSION)) {
      dep = s.run(Map.of(vit.input(), x), List.of(vit.output())).get(vit.output()).floats();
    }
    try (InferenceSession s = InferenceSession.of(simulated, SESSION)) {
      Map<String, HostTensor> feed = new java.util.HashMap<>(Map.of(vit.input(), x));
      for (PlanEntry e : plan.entries()) {
        String name = QdqLowering.SCALE_INPUT_PREFIX + e.tensor();
        if (s.inputNames().contains(name)) {
          float[] sc = QdqLowering.scaleInput(e);
          feed.put(name, HostTensor.ofFloats(e.role() == Role.WEIGHT || sc.length > 1 ? new long[] {sc.length}
              : new long[0], sc));
        }
      }
      sim = s.run(feed, List.of(vit.output())).get(vit.output()).floats();
    }
    try (InferenceSession s = InferenceSession.of(model, SESSION)) {
      fp = s.run(Map.of(vit.input(), x), List.of(vit.output())).get(vit.output()).floats();
    }
    double maxDiff = 0;
    double scale = 0;
    for (int i = 0; i < dep.length; i++) {
      assertTrue(Float.isFinite(dep[i]));
      maxDiff = Math.max(maxDiff, Math.abs(dep[i] - sim[i]));
      scale = Math.max(scale, Math.abs(fp[i]));
    }
    assertTrue(maxDiff <= 0.05 * scale, "deployed and simulated mixed plans compute the same network: " + maxDiff
        + " of " + scale);
  }

  @Test
  void theSizeEstimateIsExactOnTheUniformPointsAndCloseElsewhere() throws Exception {
    long[] exact = new long[4];
    int[][] bits = {{8, 8}, {4, 8}, {8, 6}, {4, 4}};
    for (int u = 0; u < 4; u++) {
      exact[u] = size(space.uniform(bits[u][0], bits[u][1]));
    }
    MixedPrecision.Sizes sizes = MixedPrecision.Sizes.fit(space, exact[0], exact[1], exact[2], exact[3]);
    for (int u = 0; u < 4; u++) {
      assertEquals(exact[u], sizes.bytes(space, space.uniform(bits[u][0], bits[u][1])), 1.0, "uniform " + u);
    }
    long real = size(mixed());
    long estimate = sizes.bytes(space, mixed());
    assertNotEquals(exact[0], real);
    assertTrue(Math.abs(real - estimate) <= 0.01 * real, "estimate " + estimate + " against " + real);
    // 4-bit weights are half the bytes of 8-bit ones: three blocks of 32x96, 32x32, 32x64 and 64x32 weights lose
    // 12,288 bytes (their scales, 2 or 4 bytes per channel either way, may move a little).
    long saved = space.weightBytes(space.uniform(8, 8)) - space.weightBytes(space.uniform(4, 8));
    assertEquals(12_288, saved, 3 * 224 * 2, "saved " + saved);
  }

  private static long size(MixedPrecision.Genes g) throws Exception {
    return OnnxWriter.toBytes(QdqLowering.lower(model, space.plan(g), QdqLowering.Mode.DEPLOY)).length;
  }

  @Test
  void pointsOutsideTheSpaceAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> space.plan(new MixedPrecision.Genes(new int[2], new int[5])));
    assertThrows(IllegalArgumentException.class, () -> space.uniform(6, 8));
  }
}
