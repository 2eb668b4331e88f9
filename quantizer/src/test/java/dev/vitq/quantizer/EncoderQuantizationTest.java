package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageBatch;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.builder.EncoderFeatures;
import dev.vitq.models.builder.EncoderFeatures.Mlp;
import dev.vitq.models.builder.EncoderFeatures.Output;
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
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Encoders that are not classifiers (headless with registers and LayerScale as DINOv2, SwiGLU and rotary as EVA-02,
 * an attention-pool head as SigLIP, tokens out) get sites for every role they have, and their deployed quantized
 * outputs stay close to the float model's.
 */
class EncoderQuantizationTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 48, 3, 4, 96, 5);
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);

  @TempDir static Path images;

  @BeforeAll
  static void write() throws Exception {
    TestImages.write(images, 24);
  }

  static List<Arguments> encoders() {
    List<Arguments> out = new ArrayList<>();
    EncoderFeatures dinov2 = new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4);
    EncoderFeatures eva = new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0);
    EncoderFeatures siglip = new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false, false, 0);
    EncoderFeatures tokens = new EncoderFeatures(Output.TOKENS, Mlp.GELU, false, false, 0);
    // W8A8 keeps the output's direction almost exactly; W4A4 on random weights keeps most of it.
    for (Object[] c : new Object[][] {{"dinov2", dinov2}, {"eva02", eva}, {"siglip", siglip}, {"tokens", tokens}}) {
      out.add(Arguments.of(c[0], c[1], Scheme.W8A8, 0.995));
      out.add(Arguments.of(c[0], c[1], Scheme.W4A4, 0.90));
    }
    return out;
  }

  @ParameterizedTest(name = "{0} {2}")
  @MethodSource("encoders")
  void everyRoleIsQuantizedAndTheEmbeddingKeepsItsDirection(String name, EncoderFeatures features, Scheme scheme,
      double minCosine) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, features, 7), 0, 0);
    VitStructure vit = VitRecognizer.recognize(model, name).require();
    List<QuantSite> sites = QuantSites.of(vit, scheme);
    Set<String> quantized = sites.stream().map(QuantSite::tensor).collect(Collectors.toSet());
    for (VitStructure.Linear l : vit.linears()) {
      assertTrue(quantized.contains(l.weight()), name + ": weight " + l.weight());
      assertTrue(quantized.contains(l.matmulInput()), name + ": input of " + l.weight());
    }
    if (features.mlp() == Mlp.SWIGLU) {
      assertTrue(sites.stream().noneMatch(s -> s.role() == Role.GELU_OUTPUT), "a gated product is a linear input");
    }
    boolean normsQuantized = !Technique.defaults(scheme).contains(Technique.FLOAT_NORM_INPUT);
    assertEquals(features.output() == Output.ATTENTION_POOL && normsQuantized,
        quantized.contains(vit.finalNorm().input()), "the final norm's input is quantized only for the layers after it");

    ImageDataset data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess")
        .orElseThrow()));
    Calibrator.Settings settings = new Calibrator.Settings(scheme, Method.MSE, 8, 0, SESSION);
    QuantPlan plan = Calibrator.calibrate(model, vit.input(), sites, "test", data, settings, Progress.NONE).plan();
    Model deployed = QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY);

    float[] reference = run(model, vit, data);
    float[] quantizedOut = run(deployed, vit, data);
    int n = data.size();
    int width = reference.length / n;
    double sum = 0;
    double worst = 1;
    for (int i = 0; i < n; i++) {
      double c = Evaluation.cosine(reference, i * width, quantizedOut, i * width, width);
      sum += c;
      worst = Math.min(worst, c);
    }
    double mean = sum / n;
    assertTrue(mean >= minCosine, name + " " + scheme + ": mean cosine " + mean + ", worst " + worst);
  }

  private static float[] run(Model model, VitStructure vit, ImageDataset data) throws Exception {
    List<float[]> parts = new ArrayList<>();
    try (InferenceSession s = InferenceSession.of(model, SESSION)) {
      data.forEachBatch(8, Progress.NONE, (ImageBatch b) -> {
        Map<String, HostTensor> out = s.run(Map.of(vit.input(), HostTensor.ofFloats(b.shape(), b.pixels())),
            List.of(vit.output()));
        parts.add(out.get(vit.output()).floats());
      });
    }
    int total = parts.stream().mapToInt(p -> p.length).sum();
    float[] all = new float[total];
    int at = 0;
    for (float[] p : parts) {
      System.arraycopy(p, 0, all, at, p.length);
      at += p.length;
    }
    return all;
  }
}
