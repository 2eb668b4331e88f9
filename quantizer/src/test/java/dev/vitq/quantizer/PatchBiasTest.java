package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.Tensor;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The patch embedding's bias corrected for its quantized image: with ImageNet's mean (123.675 levels of red, which no
 * integer zero point holds), the 8-bit image on the pixel grid carries every pixel shifted by the same fraction of a
 * level, and the corrected convolution gives the float one's output exactly.
 */
class PatchBiasTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);
  private static final Preprocessing IMAGENET = new Preprocessing(32, 32, 1.0 / 255, new double[] {0.485, 0.456,
      0.406}, new double[] {0.229, 0.224, 0.225}, 0);

  @TempDir static Path images;

  @BeforeAll
  static void writeImages() throws Exception {
    TestImages.write(images, 12);
  }

  @Test
  void theQuantizedImageConvolvesToTheFloatImagesOutputOnceThePatchBiasIsCorrected() throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 7), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    ImageDataset data = ImageDataset.open(images, IMAGENET);
    Set<Technique> techniques = EnumSet.of(Technique.PATCH_BIAS_CORRECTION);
    Calibrator.Settings settings = new Calibrator.Settings(Scheme.W8A8, Method.MSE, 8, 3, SESSION, techniques);
    // Only the image and the patch embedding's weight are quantized, so nothing else differs from the float model.
    List<QuantSite> sites = QuantSites.of(vit, Scheme.W8A8, techniques).stream()
        .filter(s -> s.role() == Role.CONV_INPUT || s.tensor().equals(vit.embedding().weight())).toList();
    assertEquals(2, sites.size(), sites.toString());
    QuantPlan plan = Calibrator.calibrate(model, vit.input(), sites, "sha", data, settings, Progress.NONE).plan();
    Quantizer image = plan.byTensor().get(vit.input()).quantizer();

    // Every pixel's rounding error is its channel's: a constant, not noise.
    double[] error = PatchBias.meanError(image, data, 5, 3);
    assertTrue(Math.abs(error[0]) > 0.1 * image.scale(0), "red is 0.325 levels off the grid: " + error[0]);
    data.forEachBatch(12, Progress.NONE, batch -> {
      int plane = batch.height() * batch.width();
      for (int p = 0; p < batch.pixels().length; p++) {
        int c = p / plane % 3;
        float x = batch.pixels()[p];
        assertEquals(error[c], image.fakeQuant(x, c) - x, 1e-5, "pixel " + p);
      }
    });

    Model corrected = WeightCorrection.apply(model, vit.input(), plan, data, settings, Progress.NONE);
    PlanEntry w = plan.byTensor().get(vit.embedding().weight());
    Model roundedWeights = withInitializer(model, vit.embedding().weight(), t -> {
      float[] v = t.floats();
      int perChannel = v.length / (int) (long) t.dims().get(0);
      for (int i = 0; i < v.length; i++) {
        v[i] = w.quantizer().fakeQuant(v[i], i / perChannel);
      }
      return Tensor.ofFloats(t.name(), t.dims(), v);
    });
    float[] reference = run(roundedWeights, vit, data);
    float[] fixed = run(QdqLowering.lower(corrected, plan, QdqLowering.Mode.DEPLOY), vit, data);
    float[] offset = run(QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY), vit, data);
    double fixedError = maxDiff(fixed, reference);
    double offsetError = maxDiff(offset, reference);
    assertTrue(fixedError < 1e-4, "corrected: " + fixedError);
    assertTrue(offsetError > 20 * fixedError, "uncorrected " + offsetError + " against corrected " + fixedError);

    // Without the technique nothing changes.
    Calibrator.Settings none = new Calibrator.Settings(Scheme.W8A8, Method.MSE, 8, 3, SESSION, Set.of());
    assertSame(model, WeightCorrection.apply(model, vit.input(), plan, data, none, Progress.NONE));
  }

  private static Model withInitializer(Model m, String name, java.util.function.UnaryOperator<Tensor> f) {
    List<Tensor> out = new ArrayList<>();
    for (Tensor t : m.graph().initializers()) {
      out.add(t.name().equals(name) ? f.apply(t) : t);
    }
    return m.withGraph(m.graph().withInitializers(out));
  }

  private static float[] run(Model m, VitStructure vit, ImageDataset data) throws Exception {
    float[][] out = new float[1][];
    try (InferenceSession s = InferenceSession.of(m, SESSION)) {
      data.forEachBatch(12, Progress.NONE, batch -> out[0] = s.run(Map.of(vit.input(),
          HostTensor.ofFloats(batch.shape(), batch.pixels())), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT)
          .floats());
    }
    return out[0];
  }

  private static double maxDiff(float[] a, float[] b) {
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }
}
