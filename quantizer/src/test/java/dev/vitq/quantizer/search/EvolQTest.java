package dev.vitq.quantizer.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.ActivationStats;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.QuantSites;
import dev.vitq.quantizer.Role;
import dev.vitq.quantizer.ScaleInit;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.Technique;
import dev.vitq.quantizer.TestImages;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Evol-Q search on a small built ViT and synthetic images. */
class EvolQTest {
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);
  private static final SearchSettings SETTINGS = SearchSettings.defaults().withPopulation(6).withGenerations(3)
      .withBatchSize(16).withValidation(12).withHeldOut(8).withSeed(3).withRange(0.3);

  @TempDir static Path images;
  static Model model;
  static VitStructure vit;
  static ImageDataset data;
  static QuantPlan initial;

  @BeforeAll
  static void calibrate() throws Exception {
    model = VitBuilder.build(new VitConfig(32, 8, 3, 32, 3, 2, 64, 5), Spelling.TIMM_17, 11);
    vit = VitRecognizer.recognize(model, "test").require();
    TestImages.write(images, 40);
    data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess").orElseThrow()));
    // With the residual stream quantized at the norms, as the search's first measurements were made.
    Set<Technique> quantizedNorms = EnumSet.copyOf(Technique.defaults(Scheme.W4A8));
    quantizedNorms.remove(Technique.FLOAT_NORM_INPUT);
    initial = Calibrator.calibrate(model, vit.input(), QuantSites.of(vit, Scheme.W4A8, quantizedNorms),
        "sha-of-test-model", data, new Calibrator.Settings(Scheme.W4A8, Method.MSE, 20, 3, SESSION, quantizedNorms),
        Progress.NONE).plan();
  }

  private static EvolQ.Result search(SearchSettings settings, Path state, boolean resume, EvolQ.Listener listener)
      throws VitqException {
    return EvolQ.search(model, model, vit, initial, data, settings, SESSION, state, resume, Progress.NONE, listener);
  }

  @Test
  void searchOnlyKeepsWhatLowersTheLossAndIsDeterministic() throws Exception {
    EvolQ.Result a = search(SETTINGS, null, false, EvolQ.Listener.NONE);
    EvolQ.Result b = search(SETTINGS, null, false, EvolQ.Listener.NONE);
    assertEquals(a.plan().toJson(), b.plan().toJson(), "same seed, same plan");
    assertEquals("evolq", a.plan().search());
    assertEquals(3, a.blocks().size());
    // Evolution evaluates at most its budget per visit, plus two candidates on the validation images.
    assertTrue(a.evaluations() > 0 && a.evaluations() <= 3L * (SETTINGS.evaluationsPerBlock() + 2));
    Map<String, PlanEntry> before = initial.byTensor();
    Map<String, PlanEntry> after = a.plan().byTensor();
    for (BlockResult r : a.blocks()) {
      assertTrue(r.lossAfter() <= r.lossBefore());
      // A candidate better on the search batch is kept only if it is also better on the validation images (by
      // more than their noise, which this test cannot recompute from the means).
      if (r.accepted()) {
        assertTrue(r.lossAfter() < r.lossBefore());
        assertTrue(r.validationAfter() < r.validationBefore());
      } else {
        assertEquals(r.lossBefore(), r.lossAfter());
      }
      if (r.validationBefore() == null) {
        assertFalse(r.accepted());
      }
      List<Double> curve = r.bestPerGeneration();
      assertEquals(SETTINGS.generations(), curve.size());
      for (int g = 1; g < curve.size(); g++) {
        assertTrue(curve.get(g) <= curve.get(g - 1), "best loss never rises between generations");
      }
      boolean changed = before.values().stream().filter(e -> e.block() == r.block())
          .anyMatch(e -> !e.equals(after.get(e.tensor())));
      assertEquals(r.accepted(), changed, "block " + r.block() + " changes exactly when the search accepts");
    }
    // Blocks are visited in order, each from where the previous left the loss.
    for (int i = 1; i < a.blocks().size(); i++) {
      assertEquals(a.blocks().get(i - 1).lossAfter(), a.blocks().get(i).lossBefore(), 1e-9);
    }
    assertTrue(a.blocks().stream().anyMatch(BlockResult::accepted), "a random model has room to improve");
    // Embedding and head are not searched.
    before.values().stream().filter(e -> e.block() < 0 || e.block() >= 3)
        .forEach(e -> assertEquals(e, after.get(e.tensor())));
    assertNotEquals(initial.toJson(), a.plan().withSearch("none").toJson());
    EvolQ.Result otherSeed = search(SETTINGS.withSeed(4), null, false, EvolQ.Listener.NONE);
    assertNotEquals(a.plan().toJson(), otherSeed.plan().toJson(), "the seed matters");
  }

  @Test
  void resumeAfterAKillReachesTheUninterruptedResult(@TempDir Path dir) throws Exception {
    SearchSettings settings = SETTINGS.withPasses(2).withOrder(SearchSettings.BlockOrder.RANDOM);
    EvolQ.Result whole = search(settings, null, false, EvolQ.Listener.NONE);
    Path state = dir.resolve("state.json");
    RuntimeException kill = new RuntimeException("killed");
    RuntimeException thrown = assertThrows(RuntimeException.class, () -> search(settings, state, true, s -> {
      if (s.completedSteps() == 4) {
        throw kill;
      }
    }));
    assertEquals(kill, thrown);
    assertEquals(4, SearchState.fromJson(Files.readString(state)).completedSteps());
    EvolQ.Result resumed = search(settings, state, true, EvolQ.Listener.NONE);
    assertEquals(4, resumed.resumedAtStep());
    assertEquals(whole.plan().toJson(), resumed.plan().toJson());
    assertEquals(whole.blocks(), resumed.blocks());
    assertEquals(whole.evaluations(), resumed.evaluations());

    VitqException e = assertThrows(VitqException.class,
        () -> search(settings.withPopulation(7), state, true, EvolQ.Listener.NONE));
    assertTrue(e.getMessage().startsWith("The saved search state was made with other search settings"),
        e.getMessage());
  }

  @Test
  void theValidationCheckKeepsOnlyAChangeThatHelpsMostImages() {
    double[] before = {1, 1, 1, 1, 1, 1, 1, 1};
    // Every image a little better: kept.
    assertTrue(BlockSearch.significantlyLower(new double[] {0.9, 0.92, 0.88, 0.9, 0.91, 0.89, 0.9, 0.9}, before));
    // Lower on average, but by one image's large gain while the others got worse: noise, not kept.
    assertFalse(BlockSearch.significantlyLower(new double[] {0.0, 1.02, 1.03, 1.01, 1.02, 1.04, 1.01, 1.02}, before));
    // Equal or higher: not kept.
    assertFalse(BlockSearch.significantlyLower(before.clone(), before));
    assertFalse(BlockSearch.significantlyLower(new double[] {1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1}, before));
  }

  @Test
  void blendsMixEachImageWithAnotherBetweenThirtyAndSeventyPercent() {
    int count = 5;
    int plane = 3 * 2 * 2;
    float[] pixels = new float[count * plane];
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = 10f * (i / plane);
    }
    Images images = new Images(pixels, count, 2, 2);
    Images blends = images.blended(7);
    for (int i = 0; i < count; i++) {
      float v = blends.pixels()[i * plane];
      for (int k = 1; k < plane; k++) {
        assertEquals(v, blends.pixels()[i * plane + k], 1e-4, "one blend weight per image");
      }
      // v = l * 10i + (1 - l) * 10j for some other image j and l in [0.3, 0.7].
      float own = 10f * i;
      boolean found = false;
      for (int j = 0; j < count; j++) {
        if (j != i) {
          double l = (v - 10.0 * j) / (own - 10.0 * j);
          found |= l >= 0.3 - 1e-5 && l <= 0.7 + 1e-5;
        }
      }
      assertTrue(found, "image " + i + " is " + v);
    }
    assertArrayEquals(blends.pixels(), images.blended(7).pixels(), "seeded");
    assertFalse(java.util.Arrays.equals(blends.pixels(), images.blended(8).pixels()), "the seed matters");
  }

  @Test
  void randomSearchUsesEvolutionsLargestBudget() throws Exception {
    EvolQ.Result r = search(SETTINGS.withStrategy(SearchSettings.Strategy.RANDOM), null, false,
        EvolQ.Listener.NONE);
    // The unperturbed candidate is the loss before; with it, every visit evaluates exactly the budget, plus the
    // unperturbed and the best candidate on the validation images when the best was better on the search batch.
    for (BlockResult b : r.blocks()) {
      assertEquals(SETTINGS.evaluationsPerBlock() + (b.validationBefore() == null ? 0 : 2), b.evaluations());
    }
  }

  @Test
  void suffixFromABlockInputComputesWhatTheWholeModelComputes() throws Exception {
    Model simulate = QdqLowering.lower(model, initial, QdqLowering.Mode.SIMULATE);
    String boundary = vit.blocks().get(1).norm1().input();
    Model suffix = dev.vitq.models.Cut.after(simulate, boundary, vit.output(), java.util.Set.of(vit.input())).orElseThrow();
    assertFalse(suffix.graph().inputs().stream().anyMatch(v -> v.name().equals(vit.input())));
    Images batch = Images.load(data.slice(0, 6));
    Map<String, HostTensor> feed = new HashMap<>(ScaleGenes.scales(initial, simulate.graph().inputs().stream()
        .map(v -> v.name()).toList()));
    feed.put(vit.input(), batch.tensor());
    Map<String, HostTensor> whole;
    try (InferenceSession s = InferenceSession.of(ActivationStats.exposing(simulate, List.of(boundary)), SESSION)) {
      whole = s.run(feed, List.of(boundary, vit.output()));
    }
    Map<String, HostTensor> part = new HashMap<>(ScaleGenes.scales(initial, suffix.graph().inputs().stream()
        .map(v -> v.name()).toList()));
    part.put(boundary, whole.get(boundary));
    float[] fromSuffix;
    try (InferenceSession s = InferenceSession.of(suffix, SESSION)) {
      fromSuffix = s.run(part, List.of(vit.output())).get(vit.output()).floats();
    }
    assertArrayEquals(whole.get(vit.output()).floats(), fromSuffix, 1e-5f);
  }

  @Test
  void featuresObjectiveScoresTheClassifierInput() throws Exception {
    SearchSettings settings = SETTINGS.withGenerations(1).withObjective(Objective.INFONCE_FEATURES);
    EvolQ.Result r = search(settings, null, false, EvolQ.Listener.NONE);
    // The search batch is the first share of the seeded sample, blended; the deployed initial plan scores it.
    Images batch = Images.load(data.sample(settings.batchSize() + settings.validation()
        + settings.heldOut(), settings.seed()).slice(0, settings.batchSize())).blended(settings.seed());
    String features = vit.head().linears().get(0).input();
    float[] quantized;
    float[] reference;
    Map<String, HostTensor> feed = Map.of(vit.input(), batch.tensor());
    try (InferenceSession s = InferenceSession.of(ActivationStats.exposing(
        QdqLowering.lower(model, initial, QdqLowering.Mode.DEPLOY), List.of(features)), SESSION)) {
      quantized = s.run(feed, List.of(features)).get(features).floats();
    }
    try (InferenceSession s = InferenceSession.of(ActivationStats.exposing(model, List.of(features)), SESSION)) {
      reference = s.run(feed, List.of(features)).get(features).floats();
    }
    double expected = Objective.INFONCE.loss(quantized, reference, batch.count(), settings.temperature());
    // Block 0 is simulated in the search and deployed here: a few values may round to neighbouring levels.
    assertEquals(expected, r.blocks().get(0).lossBefore(), 0.005 * expected);
  }

  @Test
  void perturbedScalesStayInTheFormTheDeployedModelStores() {
    List<PlanEntry> block = initial.entries().stream().filter(e -> e.block() == 0).toList();
    double[] factors = new double[block.size()];
    java.util.Arrays.fill(factors, 0.0731);
    Map<String, PlanEntry> after = ScaleGenes.apply(initial, block,
        ScaleGenes.geneWidths(block, SearchSettings.Genes.TENSOR), factors).byTensor();
    for (PlanEntry e : block) {
      PlanEntry p = after.get(e.tensor());
      assertNotEquals(e, p);
      if (e.role() == Role.WEIGHT) {
        for (float s : p.quantizer().scales()) {
          assertEquals(ScaleInit.toHalfGrid(s), s, "weight scales stay float16 values");
        }
      }
      // Layer-norm inputs keep one base scale times power-of-two channel factors.
      assertEquals(QdqLowering.scaleInput(e).length, QdqLowering.scaleInput(p).length);
    }
  }

  @Test
  void aTwinUniformQuantizerIsSearchedWithItsRatioKept() {
    PlanEntry twin = new PlanEntry("gelu", Role.GELU_OUTPUT, 0, Quantizer.twin(4, 3, 0.05f, 2));
    assertTrue(ScaleGenes.searchable(twin.quantizer()));
    assertFalse(ScaleGenes.searchable(Quantizer.logSqrt2(4)), "a log grid has no scale to search");
    QuantPlan plan = new QuantPlan(QuantPlan.FORMAT, "test", Scheme.W4A4, Method.MSE, "none", 0, 0, Set.of(),
        List.of(twin));
    QuantPlan moved = ScaleGenes.apply(plan, List.of(twin), new int[] {1}, new double[] {0.0731});
    Quantizer q = moved.entry("gelu").orElseThrow().quantizer();
    assertEquals(0.05f * Math.exp(0.0731), q.scale(1), 1e-7);
    assertEquals(4 * q.scale(1), q.scale(0), "the positive scale stays 4 times the negative one, exactly");
    assertEquals(3, q.zeroPoints()[0]);
  }

  @Test
  void channelGenesScaleEachOutputChannelOfTheWeightsByItsOwnFactor() {
    List<PlanEntry> block = initial.entries().stream().filter(e -> e.block() == 0).toList();
    int[] widths = ScaleGenes.geneWidths(block, SearchSettings.Genes.CHANNEL);
    double[] genes = new double[java.util.Arrays.stream(widths).sum()];
    for (int i = 0; i < genes.length; i++) {
      genes[i] = 0.05 * ((i % 3) - 1);
    }
    Map<String, PlanEntry> after = ScaleGenes.apply(initial, block, widths, genes).byTensor();
    int at = 0;
    for (int j = 0; j < block.size(); j++) {
      PlanEntry e = block.get(j);
      float[] was = e.quantizer().scales();
      float[] now = after.get(e.tensor()).quantizer().scales();
      if (e.role() == Role.WEIGHT) {
        assertEquals(was.length, widths[j], "a gene per output channel");
        for (int c = 0; c < was.length; c++) {
          assertEquals(ScaleInit.toHalfGrid((float) (was[c] * Math.exp(genes[at + c]))), now[c], e.tensor() + " " + c);
        }
      } else {
        assertEquals(1, widths[j], "one gene per activation quantizer");
      }
      at += widths[j];
    }
    assertEquals(genes.length, at);
    // Per tensor, the same block has one gene per quantizer.
    assertTrue(java.util.Arrays.stream(ScaleGenes.geneWidths(block, SearchSettings.Genes.TENSOR))
        .allMatch(w -> w == 1));
  }

  @Test
  void channelGenesSearchDeterministically() throws Exception {
    SearchSettings settings = SETTINGS.withGenes(SearchSettings.Genes.CHANNEL);
    EvolQ.Result a = search(settings, null, false, EvolQ.Listener.NONE);
    EvolQ.Result b = search(settings, null, false, EvolQ.Listener.NONE);
    assertEquals(a.plan().toJson(), b.plan().toJson());
    for (BlockResult r : a.blocks()) {
      assertTrue(r.lossAfter() <= r.lossBefore());
    }
  }

  @Test
  void aHeadlessEncoderIsSearchedOnItsEmbeddingAndScoredByCosine() throws Exception {
    Model encoder = dev.vitq.models.canon.Canonicalizer.apply(VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64,
        5), Spelling.TIMM_17, new dev.vitq.models.builder.EncoderFeatures(
            dev.vitq.models.builder.EncoderFeatures.Output.POOLED,
            dev.vitq.models.builder.EncoderFeatures.Mlp.SWIGLU, true, true, 2), 5), 0, 0);
    VitStructure headless = VitRecognizer.recognize(encoder, "encoder").require();
    assertFalse(headless.classifier());
    QuantPlan plan = Calibrator.calibrate(encoder, headless.input(), QuantSites.of(headless, Scheme.W4A8), "sha",
        data, new Calibrator.Settings(Scheme.W4A8, Method.MSE, 20, 3, SESSION), Progress.NONE).plan();
    EvolQ.Result r = EvolQ.search(encoder, encoder, headless, plan, data, SETTINGS, SESSION, null, false, Progress.NONE,
        EvolQ.Listener.NONE);
    assertEquals(2, r.blocks().size());
    // The held-out score of an embedding model is its mean cosine with the float outputs, not an arg-max agreement.
    assertTrue(r.heldOutBefore() > 0.5 && r.heldOutBefore() <= 1 + 1e-9, "cosine " + r.heldOutBefore());
    assertTrue(r.heldOutAfter() > 0.5 && r.heldOutAfter() <= 1 + 1e-9, "cosine " + r.heldOutAfter());
    assertTrue(r.heldOutBefore() != Math.rint(r.heldOutBefore() * 8) / 8 || r.heldOutBefore() == 1,
        "a share of 8 images would be a multiple of 1/8");
  }
}
