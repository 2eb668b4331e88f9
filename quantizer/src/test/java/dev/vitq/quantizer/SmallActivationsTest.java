package dev.vitq.quantizer;

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
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Quantization is scale-free: a model whose classifier, or an inner activation, is a thousand or ten thousand times
 * smaller than usual quantizes as well as the model itself, at every scheme, with and without the techniques; and so
 * does one whose class token alone is a million times smaller than the other tokens (DeiT-III at initialisation,
 * whose quantized logits were exactly zero while the final norm's input was quantized over every token).
 */
class SmallActivationsTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);

  @TempDir static Path images;

  @BeforeAll
  static void writeImages() throws Exception {
    TestImages.write(images, 24);
  }

  /** The model with the named initializers multiplied by {@code factor}. */
  private static UnaryOperator<Model> scaled(double factor, String... names) {
    Set<String> which = Set.of(names);
    return m -> {
      List<Tensor> out = new ArrayList<>();
      for (Tensor t : m.graph().initializers()) {
        if (which.contains(t.name())) {
          float[] v = t.floats();
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] * factor);
          }
          t = Tensor.ofFloats(t.name(), t.dims(), v);
        }
        out.add(t);
      }
      return m.withGraph(m.graph().withInitializers(out));
    };
  }

  /**
   * DeiT-III as timm initialises it: a class token of standard deviation 1e-6 without a position embedding, LayerScale
   * 1e-6 on every branch (folded here into proj and fc2), zero biases in the final norm and the head. The class
   * token's residual stream stays a million times smaller than the patch tokens', and the logits are about 1e-3.
   */
  private static Model deit3(Model model) {
    Model m = scaled(1e-6, "cls_token", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
        "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias", "blocks.1.attn.proj.weight", "blocks.1.attn.proj.bias",
        "blocks.1.mlp.fc2.weight", "blocks.1.mlp.fc2.bias").apply(scaled(0, "norm.bias", "head.bias").apply(model));
    List<Tensor> out = new ArrayList<>();
    for (Tensor t : m.graph().initializers()) {
      if (t.name().equals("pos_embed")) {
        float[] v = t.floats();
        java.util.Arrays.fill(v, 0, CONFIG.embedDim(), 0f);
        t = Tensor.ofFloats(t.name(), t.dims(), v);
      }
      out.add(t);
    }
    return m.withGraph(m.graph().withInitializers(out));
  }

  /** Mean cosine of the quantized model's logits with the float model's, and whether any image's were all zero. */
  private record Fidelity(double cosine, boolean allZero) {}

  private static Fidelity quantize(Model model, Scheme scheme, Set<Technique> techniques) throws Exception {
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    ImageDataset data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess")
        .orElseThrow()));
    Calibrator.Settings settings = new Calibrator.Settings(scheme, Method.MSE, 8, 3, SESSION, techniques);
    QuantPlan plan = Calibrator.calibrate(model, vit.input(), QuantSites.of(vit, scheme, techniques), "sha", data,
        settings, Progress.NONE).plan();
    Model corrected = WeightCorrection.apply(model, vit.input(), plan, data, settings, Progress.NONE);
    Model lowered = QdqLowering.lower(corrected, plan, QdqLowering.Mode.DEPLOY);
    float[][] logits = new float[2][];
    try (InferenceSession f = InferenceSession.of(model, SESSION);
        InferenceSession q = InferenceSession.of(lowered, SESSION)) {
      data.forEachBatch(24, Progress.NONE, batch -> {
        Map<String, HostTensor> in = Map.of(vit.input(), HostTensor.ofFloats(batch.shape(), batch.pixels()));
        logits[0] = f.run(in, List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
        logits[1] = q.run(in, List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
      });
    }
    int classes = CONFIG.classes();
    int n = logits[0].length / classes;
    double sum = 0;
    boolean allZero = false;
    for (int i = 0; i < n; i++) {
      double dot = 0;
      double a = 0;
      double b = 0;
      for (int c = i * classes; c < (i + 1) * classes; c++) {
        dot += (double) logits[0][c] * logits[1][c];
        a += (double) logits[0][c] * logits[0][c];
        b += (double) logits[1][c] * logits[1][c];
      }
      allZero |= b == 0;
      sum += b == 0 ? 0 : dot / Math.sqrt(a * b);
    }
    return new Fidelity(sum / n, allZero);
  }

  @ParameterizedTest
  @EnumSource(value = Scheme.class, names = {"W8A8", "W4A8", "W6A6", "W4A4"})
  void scaledDownClassifiersAndInnerActivationsQuantizeAsWellAsTheModel(Scheme scheme) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 11), 32, 32);
    // fc1's input a thousand times smaller and its weight a thousand times larger: the same function, with the
    // quantized activation fc1 reads (and, with LN_REPARAM, the norm it comes from) on a grid 1e-3 as fine.
    UnaryOperator<Model> inner = m -> scaled(1e3, "blocks.1.mlp.fc1.weight").apply(
        scaled(1e-3, "blocks.1.norm2.weight", "blocks.1.norm2.bias").apply(m));
    Map<String, UnaryOperator<Model>> variants = Map.of(
        "classifier x 1e-4", scaled(1e-4, "head.weight", "head.bias"),
        "fc1 input x 1e-3", inner,
        "both", m -> inner.apply(scaled(1e-4, "head.weight", "head.bias").apply(m)),
        "class token x 1e-6, as DeiT-III's at initialisation", SmallActivationsTest::deit3);
    for (Set<Technique> techniques : List.of(Technique.defaults(scheme), Set.<Technique>of())) {
      Fidelity base = quantize(model, scheme, techniques);
      assertTrue(!base.allZero() && base.cosine() > 0.5, scheme + " " + techniques + ": " + base);
      for (Map.Entry<String, UnaryOperator<Model>> v : variants.entrySet()) {
        Fidelity f = quantize(v.getValue().apply(model), scheme, techniques);
        assertTrue(!f.allZero(), scheme + " " + techniques + ", " + v.getKey() + ": all-zero logits");
        assertTrue(f.cosine() >= base.cosine() - 0.02, scheme + " " + techniques + ", " + v.getKey() + ": cosine "
            + f.cosine() + " against " + base.cosine() + " unscaled");
      }
    }
  }
}
