package dev.vitq.quantizer.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantSites;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.TestImages;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mixed-precision search on a small built ViT and synthetic images. */
class AutoSearchTest {
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);
  private static final AutoSearch.Settings SETTINGS = AutoSearch.Settings.defaults().withPopulation(8)
      .withGenerations(4).withBatchSize(16).withHeldOut(8).withFrontSize(64).withLatencyRuns(3).withSeed(3);

  @TempDir static Path images;
  static Model model;
  static VitStructure vit;
  static ImageDataset data;
  static MixedPrecision space;

  @BeforeAll
  static void calibrate() throws Exception {
    model = VitBuilder.build(new VitConfig(32, 8, 3, 32, 3, 2, 64, 5), Spelling.TIMM_17, 11);
    vit = VitRecognizer.recognize(model, "test").require();
    TestImages.write(images, 30);
    data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess").orElseThrow()));
    var sites = MixedPrecision.sites(vit);
    Calibrator.Result c = Calibrator.calibrate(model, vit.input(), sites, "sha", data,
        new Calibrator.Settings(Scheme.W8A8, Method.MSE, 10, 3, SESSION), Progress.NONE);
    space = MixedPrecision.of(model, vit, sites, "sha", c.stats(), 30, data.preprocessing(), Method.MSE, 3, SESSION);
  }

  private static AutoSearch.Result search() throws Exception {
    return AutoSearch.search(model, vit, space, data, SETTINGS, SESSION,
        plan -> QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY), Progress.NONE);
  }

  @Test
  void theFrontIsNonDominatedHoldsOrBeatsEveryUniformSchemeAndIsDeterministic() throws Exception {
    AutoSearch.Result a = search();
    assertFalse(a.front().isEmpty());
    assertTrue(a.evaluations() > 4 && a.evaluations() <= 8 + 3 * 8, "scored " + a.evaluations());
    for (AutoSearch.Point p : a.front()) {
      for (AutoSearch.Point q : a.front()) {
        boolean dominates = q.loss() <= p.loss() && q.estimatedBytes() <= p.estimatedBytes()
            && (q.loss() < p.loss() || q.estimatedBytes() < p.estimatedBytes());
        assertFalse(dominates, q.name() + " dominates " + p.name() + " on the front");
      }
      // What was measured is the model that ships.
      assertEquals(OnnxWriter.toBytes(QdqLowering.lower(model, p.plan(), QdqLowering.Mode.DEPLOY)).length,
          p.bytes());
      assertTrue(Math.abs(p.bytes() - p.estimatedBytes()) <= 0.01 * p.bytes(), p.bytes() + " vs estimate "
          + p.estimatedBytes());
      assertTrue(p.latencyMillis() > 0);
      assertTrue(p.agreement() >= 0 && p.agreement() <= 1);
    }
    assertEquals(4, a.uniform().size());
    for (AutoSearch.Point u : a.uniform()) {
      boolean heldOrBeaten = a.front().stream().anyMatch(p -> p.genes().equals(u.genes())
          || (p.loss() <= u.loss() && p.estimatedBytes() <= u.estimatedBytes()));
      assertTrue(heldOrBeaten, "the front holds or dominates " + u.name());
    }
    // The uniform schemes' sizes are exact, and 4-bit weights make the smallest.
    long smallest = a.front().get(0).bytes();
    assertTrue(smallest <= a.uniform().get(1).bytes() && smallest <= a.uniform().get(3).bytes() + 64);

    AutoSearch.Result b = search();
    assertEquals(a.front().stream().map(AutoSearch.Point::name).toList(),
        b.front().stream().map(AutoSearch.Point::name).toList(), "same seed, same front");
    assertEquals(a.front().stream().map(AutoSearch.Point::loss).toList(),
        b.front().stream().map(AutoSearch.Point::loss).toList());
    assertEquals(a.evaluations(), b.evaluations());
  }
}
