package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.ActivationStats;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** GPTQ and bias correction on small built ViTs, with the layer inputs checked against direct Java sums. */
class WeightCorrectionTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);
  private static final Set<Technique> REPARAM = EnumSet.of(Technique.LN_REPARAM, Technique.NORM_INPUT_8BIT,
      Technique.LOG_SQRT2_SOFTMAX);

  @TempDir static Path images;
  static ImageDataset data;

  @BeforeAll
  static void writeImages() throws Exception {
    TestImages.write(images, 24);
  }

  /** A built ViT, canonical, with its calibrated plan under the scheme and techniques. */
  private record Calibrated(Model model, VitStructure vit, QuantPlan plan, Calibrator.Settings settings) {
    static Calibrated of(Spelling spelling, Scheme scheme, Set<Technique> techniques) throws Exception {
      Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, spelling, 7), 32, 32);
      VitStructure vit = VitRecognizer.recognize(model, "test").require();
      ImageDataset images = ImageDataset.open(WeightCorrectionTest.images,
          Preprocessing.fromMetadata(model.metadata("preprocess").orElseThrow()));
      data = images;
      Calibrator.Settings settings = new Calibrator.Settings(scheme, Method.MSE, 8, 3, SESSION, techniques);
      QuantPlan plan = Calibrator.calibrate(model, vit.input(), QuantSites.of(vit, scheme, techniques), "sha", images,
          settings, Progress.NONE).plan();
      return new Calibrated(model, vit, plan, settings);
    }

    List<WeightCorrection.Layer> layers() {
      return WeightCorrection.layers(model.graph(), plan);
    }

    Map<String, Integer> widths() {
      Map<String, Integer> w = new LinkedHashMap<>();
      layers().forEach(l -> w.put(l.input(), l.in()));
      return w;
    }

    Map<String, InputMoments> moments() throws Exception {
      return InputMoments.collect(model, vit.input(), widths(), data, 8, SESSION, Progress.NONE);
    }

    /** Every row of each layer input over all images, straight from the float model. */
    Map<String, List<float[]>> rows() throws Exception {
      Map<String, Integer> widths = widths();
      Map<String, List<float[]>> rows = new LinkedHashMap<>();
      widths.keySet().forEach(t -> rows.put(t, new ArrayList<>()));
      List<String> tensors = List.copyOf(widths.keySet());
      try (InferenceSession s = InferenceSession.of(ActivationStats.exposing(model, tensors), SESSION)) {
        data.forEachBatch(8, Progress.NONE, batch -> {
          Map<String, HostTensor> out = s.run(Map.of(vit.input(), HostTensor.ofFloats(batch.shape(),
              batch.pixels())), tensors);
          for (String t : tensors) {
            float[] v = out.get(t).floats();
            int n = widths.get(t);
            for (int r = 0; r < v.length / n; r++) {
              rows.get(t).add(java.util.Arrays.copyOfRange(v, r * n, (r + 1) * n));
            }
          }
        });
      }
      return rows;
    }
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "DYNAMO_20", "HF_13"})
  void momentsFromOnnxRuntimeEqualDirectSums(Spelling spelling) throws Exception {
    Calibrated c = Calibrated.of(spelling, Scheme.W4A8, Set.of());
    // q/k/v, proj, fc1 and fc2 of both blocks, and the head; fused or separate q/k/v share one input.
    assertEquals(2 * (spelling == Spelling.HF_13 ? 6 : 4) + 1, c.layers().size(), "linear layers");
    Map<String, InputMoments> moments = c.moments();
    Map<String, List<float[]>> rows = c.rows();
    assertEquals(rows.keySet(), moments.keySet());
    for (Map.Entry<String, List<float[]>> e : rows.entrySet()) {
      InputMoments m = moments.get(e.getKey());
      int n = m.features();
      assertEquals(e.getValue().size(), m.rows(), "rows of " + e.getKey());
      double[] gram = new double[n * n];
      double[] sum = new double[n];
      for (float[] x : e.getValue()) {
        for (int i = 0; i < n; i++) {
          sum[i] += x[i];
          for (int j = 0; j < n; j++) {
            gram[i * n + j] += (double) x[i] * x[j];
          }
        }
      }
      for (int i = 0; i < n; i++) {
        double scale = Math.sqrt(gram[i * n + i]) + 1e-6;
        assertEquals(sum[i], m.sum()[i], 1e-4 * Math.sqrt(m.rows()) * scale, "sum " + i + " of " + e.getKey());
        for (int j = 0; j < n; j++) {
          double tol = 1e-4 * scale * (Math.sqrt(gram[j * n + j]) + 1e-6);
          assertEquals(gram[i * n + j], m.gram()[i * n + j], tol, "X^T X (" + i + ", " + j + ") of " + e.getKey());
        }
      }
    }
  }

  @Test
  void momentsDoNotDependOnTheBatchTheImagesAreDecodedIn() throws Exception {
    Calibrated c = Calibrated.of(Spelling.TIMM_17, Scheme.W4A8, Set.of());
    Map<String, InputMoments> one = InputMoments.collect(c.model(), c.vit().input(), c.widths(), data, 1, SESSION,
        Progress.NONE);
    for (int batch : new int[] {5, 24}) {
      Map<String, InputMoments> other = InputMoments.collect(c.model(), c.vit().input(), c.widths(), data, batch,
          SESSION, Progress.NONE);
      assertEquals(one.keySet(), other.keySet());
      for (String t : one.keySet()) {
        assertEquals(one.get(t).rows(), other.get(t).rows());
        assertArrayEquals(one.get(t).sum(), other.get(t).sum(), 0.0, "sums of " + t + " at batch " + batch);
        assertArrayEquals(one.get(t).gram(), other.get(t).gram(), 0.0, "X^T X of " + t + " at batch " + batch);
      }
    }
  }

  @Test
  void tensorsWithoutSecondMomentsGetTheSameSumsAndNoProducts() throws Exception {
    Calibrated c = Calibrated.of(Spelling.TIMM_17, Scheme.W8A8, Set.of());
    Map<String, InputMoments> both = c.moments();
    String wide = c.layers().stream().max(java.util.Comparator.comparingInt(WeightCorrection.Layer::in)).orElseThrow()
        .input();
    Map<String, InputMoments> some = new LinkedHashMap<>();
    InputMoments.collect(c.model(), c.vit().input(), c.widths(), Set.of(wide), data, 8, Long.MAX_VALUE, SESSION,
        Progress.NONE, m -> m.forEach((t, x) -> some.put(t, new InputMoments(x.features(), x.rows(),
            x.sum().clone(), x.gram().clone()))));
    assertEquals(both.keySet(), some.keySet());
    for (String t : both.keySet()) {
      assertEquals(both.get(t).rows(), some.get(t).rows());
      assertArrayEquals(both.get(t).sum(), some.get(t).sum(), 0.0, "sums of " + t);
      if (t.equals(wide)) {
        assertArrayEquals(both.get(t).gram(), some.get(t).gram(), 0.0, "X^T X of " + t);
      } else {
        assertEquals(0, some.get(t).gram().length, "no X^T X asked for " + t);
        assertTrue(both.get(t).gram().length > 0, "X^T X gathered for " + t + " when asked");
      }
    }
  }

  @Test
  void gptqRoundsEightBitWeightsUpToTheWidthLimitAndFourBitWeightsAtAnyWidth() {
    Quantizer eight = Quantizer.symmetric(8, 1, new float[] {1f});
    Quantizer four = Quantizer.symmetric(4, 1, new float[] {1f});
    int limit = WeightCorrection.GPTQ_MAX_INPUTS_8BIT;
    assertTrue(WeightCorrection.gptqRounds(layer(eight, limit)));
    assertTrue(!WeightCorrection.gptqRounds(layer(eight, limit + 1)), "ViT-Base's fc2 is rounded to nearest");
    assertTrue(WeightCorrection.gptqRounds(layer(four, 4 * limit)));
  }

  private static WeightCorrection.Layer layer(Quantizer q, int in) {
    return new WeightCorrection.Layer("w", "x", false, in, 1, null, 1f, q, null);
  }

  @Test
  void stagesCutAtTheResidualStreamAndGiveTheMomentsOfTheWholeModel() throws Exception {
    Calibrated c = Calibrated.of(Spelling.TIMM_17, Scheme.W4A8, Set.of());
    Model sorted = OpsetUpgrade.to(c.model().withGraph(c.model().graph().topologicallySorted()), 13);
    Map<String, Long> costs = new LinkedHashMap<>();
    c.widths().forEach((t, n) -> costs.put(t, InputMoments.cost(n, true)));
    // One block's inputs per stage: 32, 32, 32 and 64 wide.
    long budget = 3 * InputMoments.cost(32, true) + InputMoments.cost(64, true);
    List<Stages.Stage> stages = Stages.of(sorted.graph(), c.vit().input(), costs, budget);
    assertEquals(3, stages.size(), "two blocks, then the head: " + stages);
    assertEquals(c.vit().blocks().get(1).input(), stages.get(0).out(), "cut where block 1 starts");
    // The next cut with the head's input after it: the final norm's output (nothing between needs moments).
    assertEquals(c.vit().finalNorm().output(), stages.get(1).out(), "and before the head");
    assertEquals(List.of(costs.keySet().stream().toList().get(costs.size() - 1)), stages.get(2).tensors(), "head");
    assertEquals(1, Stages.of(sorted.graph(), c.vit().input(), costs, Long.MAX_VALUE).size());

    Map<String, InputMoments> whole = c.moments();
    for (long b : new long[] {budget, 1}) {
      Map<String, InputMoments> staged = new LinkedHashMap<>();
      List<Integer> groups = new ArrayList<>();
      InputMoments.collect(c.model(), c.vit().input(), c.widths(), c.widths().keySet(), data, 8, b, SESSION,
          Progress.NONE, m -> {
        groups.add(m.size());
        // The sums are reused after the call: keep copies.
        m.forEach((t, x) -> staged.put(t, new InputMoments(x.features(), x.rows(), x.sum().clone(),
            x.gram().clone())));
      });
      assertEquals(b == 1 ? costs.size() : 3, groups.size(), "groups at budget " + b + ": " + groups);
      assertEquals(whole.keySet(), staged.keySet());
      for (String t : whole.keySet()) {
        InputMoments w = whole.get(t);
        InputMoments s = staged.get(t);
        assertEquals(w.rows(), s.rows());
        for (int i = 0; i < w.gram().length; i++) {
          double scale = Math.sqrt(w.gram()[i / w.features() * (w.features() + 1)]
              * w.gram()[i % w.features() * (w.features() + 1)]);
          assertEquals(w.gram()[i], s.gram()[i], 1e-5 * scale + 1e-9, "X^T X of " + t);
        }
      }
    }
  }

  @Test
  void quantizingAtTwoBatchSizesGivesTheSamePlanAndWeights() throws Exception {
    Set<Technique> techniques = EnumSet.of(Technique.GPTQ, Technique.BIAS_CORRECTION);
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 7), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    ImageDataset images = ImageDataset.open(WeightCorrectionTest.images,
        Preprocessing.fromMetadata(model.metadata("preprocess").orElseThrow()));
    List<Model> lowered = new ArrayList<>();
    List<QuantPlan> plans = new ArrayList<>();
    for (int batch : new int[] {3, 16}) {
      Calibrator.Settings settings = new Calibrator.Settings(Scheme.W8A8, Method.MSE, batch, 3, SESSION, techniques);
      QuantPlan plan = Calibrator.calibrate(model, vit.input(), QuantSites.of(vit, Scheme.W8A8, techniques), "sha",
          images, settings, Progress.NONE).plan();
      Model corrected = WeightCorrection.apply(model, vit.input(), plan, images, settings, Progress.NONE);
      assertNotEquals(model.graph().initializers(), corrected.graph().initializers());
      plans.add(plan);
      lowered.add(QdqLowering.lower(corrected, plan, QdqLowering.Mode.DEPLOY));
    }
    assertEquals(plans.get(0), plans.get(1));
    assertEquals(lowered.get(0).graph().initializers(), lowered.get(1).graph().initializers());
    assertEquals(lowered.get(0).graph().nodes(), lowered.get(1).graph().nodes());
  }

  /** {@code sum over rows of ||x (W - W2)||^2}, from {@code X^T X}, with both weights in the layer's own layout. */
  private static double outputError(WeightCorrection.Layer l, float[] w, float[] w2, double[] gram) {
    int n = l.in();
    double total = 0;
    double[] d = new double[n];
    for (int o = 0; o < l.out(); o++) {
      for (int i = 0; i < n; i++) {
        int at = l.outInRows() ? o * n + i : i * l.out() + o;
        d[i] = (double) w[at] - w2[at];
      }
      for (int i = 0; i < n; i++) {
        double hd = 0;
        for (int j = 0; j < n; j++) {
          hd += gram[i * n + j] * d[j];
        }
        total += d[i] * hd;
      }
    }
    return total;
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "DYNAMO_20"})
  void gptqLowersEachLayersOutputErrorAndStaysOnTheGridTheLoweringQuantizes(Spelling spelling) throws Exception {
    for (Set<Technique> techniques : List.of(Set.<Technique>of(), REPARAM)) {
      Calibrated c = Calibrated.of(spelling, Scheme.W4A4, techniques);
      List<WeightCorrection.Layer> layers = c.layers();
      assertEquals(techniques.contains(Technique.LN_REPARAM), layers.stream().anyMatch(l -> l.factors() != null),
          "reparameterised inputs seen");
      Map<String, InputMoments> moments = c.moments();
      Graph gptq = WeightCorrection.correct(c.model().graph(), layers, moments, true, false);
      Graph rtn = WeightCorrection.correct(c.model().graph(), layers, moments, false, false);
      assertSame(c.model().graph(), rtn, "round-to-nearest alone changes nothing: the lowering rounds anyway");
      // What the lowering rounds, for round-to-nearest: the (folded) float weights.
      GraphIndex folded = GraphIndex.of(LayerNormReparam.apply(c.model().graph(), c.plan().entries()));
      GraphIndex foldedGptq = GraphIndex.of(LayerNormReparam.apply(gptq, c.plan().entries()));
      GraphIndex before = GraphIndex.of(c.model().graph());
      GraphIndex after = GraphIndex.of(gptq);
      for (WeightCorrection.Layer l : layers) {
        Quantizer q = l.quantizer();
        int axis = q.axis();
        float[] fw = folded.initializer(l.weight()).orElseThrow().floats();
        float[] gw = foldedGptq.initializer(l.weight()).orElseThrow().floats();
        float[] nearest = new float[fw.length];
        for (int k = 0; k < fw.length; k++) {
          int channel = axis == 0 ? k / l.in() : k % l.out();
          nearest[k] = q.fakeQuant(fw[k], channel);
          // The lowering's rounding re-derives GPTQ's level: the folded value is that level times its scale.
          float level = q.fakeQuant(gw[k], channel);
          assertEquals(level, gw[k], 1e-5f * Math.abs(level) + 1e-9f, l.weight() + "[" + k + "] on the grid");
        }
        // Errors in the space of the inputs the model computes: unfolded round-to-nearest and GPTQ weights.
        float[] w = before.initializer(l.weight()).orElseThrow().floats();
        float[] rtnW = unfold(l, nearest);
        float[] gptqW = after.initializer(l.weight()).orElseThrow().floats();
        double[] gram = moments.get(l.input()).gram();
        double e1 = outputError(l, w, rtnW, gram);
        double e2 = outputError(l, w, gptqW, gram);
        assertTrue(e2 < e1, techniques + " " + l.weight() + ": GPTQ " + e2 + " against nearest " + e1);
      }
    }
  }

  private static float[] unfold(WeightCorrection.Layer l, float[] folded) {
    float[] w = new float[folded.length];
    for (int k = 0; k < w.length; k++) {
      int i = l.outInRows() ? k % l.in() : k / l.out();
      w[k] = l.factors() == null ? folded[k] : (float) (folded[k] / l.factors()[i]);
    }
    return w;
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "DYNAMO_20"})
  void biasCorrectionZeroesTheMeanOutputErrorOnTheCalibrationInputs(Spelling spelling) throws Exception {
    Calibrated c = Calibrated.of(spelling, Scheme.W4A8, Set.of());
    List<WeightCorrection.Layer> layers = c.layers();
    Graph corrected = WeightCorrection.correct(c.model().graph(), layers, c.moments(), false, true);
    GraphIndex before = GraphIndex.of(c.model().graph());
    GraphIndex after = GraphIndex.of(corrected);
    Map<String, List<float[]>> rows = c.rows();
    int biased = 0;
    for (WeightCorrection.Layer l : layers) {
      if (l.bias() == null) {
        continue;
      }
      biased++;
      float[] w = before.initializer(l.weight()).orElseThrow().floats();
      assertEquals(List.of(w.length), List.of(after.initializer(l.weight()).orElseThrow().floats().length));
      float[] b0 = before.initializer(l.bias()).orElseThrow().floats();
      float[] b1 = after.initializer(l.bias()).orElseThrow().floats();
      assertNotEquals(List.of(b0), List.of(b1));
      Quantizer q = l.quantizer();
      double[] meanError = new double[l.out()];
      double[] meanMagnitude = new double[l.out()];
      List<float[]> xs = rows.get(l.input());
      for (float[] x : xs) {
        for (int o = 0; o < l.out(); o++) {
          double y = b0[o];
          double yq = b1[o];
          for (int i = 0; i < l.in(); i++) {
            int at = l.outInRows() ? o * l.in() + i : i * l.out() + o;
            y += (double) x[i] * w[at];
            yq += (double) x[i] * q.fakeQuant(w[at], o);
          }
          meanError[o] += (yq - y) / xs.size();
          meanMagnitude[o] += Math.abs(yq - y) / xs.size();
        }
      }
      for (int o = 0; o < l.out(); o++) {
        assertEquals(0, meanError[o], 1e-4 * meanMagnitude[o] + 1e-6, l.weight() + " output " + o);
      }
    }
    assertEquals(layers.size(), biased, "every built linear layer has a bias");
  }

  @Test
  void applyIsDeterministicAndLowersToARunnableModel() throws Exception {
    Set<Technique> all = EnumSet.copyOf(REPARAM);
    all.add(Technique.GPTQ);
    all.add(Technique.BIAS_CORRECTION);
    Calibrated c = Calibrated.of(Spelling.TIMM_17, Scheme.W4A4, all);
    Model a = WeightCorrection.apply(c.model(), c.vit().input(), c.plan(), data, c.settings(), Progress.NONE);
    Model b = WeightCorrection.apply(c.model(), c.vit().input(), c.plan(), data, c.settings(), Progress.NONE);
    assertEquals(a.graph().initializers(), b.graph().initializers(), "same seed, same weights");
    assertNotEquals(c.model().graph().initializers(), a.graph().initializers());
    assertEquals(c.model().graph().nodes(), a.graph().nodes(), "only constants change");
    Model lowered = QdqLowering.lower(a, c.plan(), QdqLowering.Mode.DEPLOY);
    try (InferenceSession s = InferenceSession.of(lowered, SESSION)) {
      data.forEachBatch(24, Progress.NONE, batch -> {
        float[] logits = s.run(Map.of(c.vit().input(), HostTensor.ofFloats(batch.shape(), batch.pixels())),
            List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
        assertEquals(24 * 5, logits.length);
        for (float v : logits) {
          assertTrue(Float.isFinite(v));
        }
      });
    }
    Calibrated plain = Calibrated.of(Spelling.TIMM_17, Scheme.W4A4, REPARAM);
    assertSame(plain.model(), WeightCorrection.apply(plain.model(), plain.vit().input(), plain.plan(), data,
        plain.settings(), Progress.NONE), "neither technique asked for");
  }
}
