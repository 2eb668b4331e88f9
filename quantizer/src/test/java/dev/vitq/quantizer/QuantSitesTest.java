package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which tensors a scheme quantizes at how many bits, and what the image's quantizer does to pixels. */
class QuantSitesTest {
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);

  @TempDir static Path images;
  static Model model;
  static VitStructure vit;
  static ImageDataset data;

  @BeforeAll
  static void build() throws Exception {
    model = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), Spelling.TIMM_17, 3);
    vit = VitRecognizer.recognize(model, "test").require();
    TestImages.write(images, 8);
    data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess").orElseThrow()));
  }

  private static Set<Technique> w4a4WithoutImage8Bit() {
    Set<Technique> without = EnumSet.copyOf(Technique.defaults(Scheme.W4A4));
    without.remove(Technique.IMAGE_8BIT);
    return without;
  }

  private static QuantSite image(List<QuantSite> sites) {
    return sites.stream().filter(s -> s.role() == Role.CONV_INPUT).findFirst().orElseThrow();
  }

  @Test
  void w4a4KeepsTheImageAt8BitsAndEveryOtherActivationAt4OrTheNormsEight() {
    List<QuantSite> sites = QuantSites.of(vit, Scheme.W4A4);
    assertEquals(8, image(sites).bits());
    assertTrue(sites.stream().filter(s -> s.role().isActivation() && s.role() != Role.CONV_INPUT)
        .allMatch(s -> s.bits() == (s.role() == Role.NORM_INPUT ? 8 : 4)), "only the image and the norms widen");
    assertEquals(4, image(QuantSites.of(vit, Scheme.W4A4, w4a4WithoutImage8Bit())).bits());
    assertEquals(6, image(QuantSites.of(vit, Scheme.W6A6)).bits(), "W6A6 measured better with a 6-bit image");
  }

  @Test
  void aFinalNormWhoseHeadReadsOnlyTheClassTokenIsNotQuantizedOverEveryToken() {
    assertEquals(VitStructure.Head.Pooling.CLASS_TOKEN, vit.head().pooling());
    for (Scheme scheme : List.of(Scheme.W8A8, Scheme.W4A8, Scheme.W6A6, Scheme.W4A4)) {
      Set<Technique> quantizedNorms = EnumSet.copyOf(Technique.defaults(scheme));
      quantizedNorms.remove(Technique.FLOAT_NORM_INPUT);
      List<QuantSite> sites = QuantSites.of(vit, scheme, quantizedNorms);
      assertTrue(sites.stream().noneMatch(s -> s.tensor().equals(vit.finalNorm().input())), scheme.toString());
      assertEquals(vit.blocks().size() * 2, sites.stream().filter(s -> s.role() == Role.NORM_INPUT).count(),
          "the blocks' norms keep theirs");
      assertTrue(sites.stream().anyMatch(s -> s.tensor().equals(vit.head().linears().get(0).matmulInput())),
          "the head's input, the class token after the norm, is quantized");
    }
  }

  @Test
  void floatAttentionLeavesQueriesKeysValuesAndProbabilitiesAloneAndNothingElse() {
    Set<Role> attention = EnumSet.of(Role.ATTN_QUERY, Role.ATTN_KEY, Role.ATTN_VALUE, Role.SOFTMAX_OUTPUT);
    List<QuantSite> quantized = QuantSites.of(vit, Scheme.W8A8);
    Set<Technique> techniques = EnumSet.copyOf(Technique.defaults(Scheme.W8A8));
    techniques.add(Technique.FLOAT_ATTENTION);
    List<QuantSite> floatAttention = QuantSites.of(vit, Scheme.W8A8, techniques);
    assertEquals(4 * vit.blocks().size(), quantized.stream().filter(s -> attention.contains(s.role())).count());
    assertEquals(quantized.stream().filter(s -> !attention.contains(s.role())).toList(), floatAttention);
  }

  @Test
  void floatNormInputsLeaveTheStreamAloneExceptAtASplitsBoundary() {
    Set<Technique> floatNorms = EnumSet.of(Technique.FLOAT_NORM_INPUT);
    List<QuantSite> sites = QuantSites.of(vit, Scheme.W4A4, floatNorms);
    assertTrue(sites.stream().noneMatch(s -> s.role() == Role.NORM_INPUT));
    List<QuantSite> quantizedNorms = QuantSites.of(vit, Scheme.W4A4, EnumSet.noneOf(Technique.class));
    assertEquals(sites, quantizedNorms.stream().filter(s -> s.role() != Role.NORM_INPUT).toList(),
        "every other site is the same");

    int k = 1;
    List<QuantSite> split = QuantSites.withBoundary(sites, vit, Scheme.W4A4, k);
    assertEquals(sites.size() + 1, split.size());
    int at = split.indexOf(split.stream().filter(s -> s.role() == Role.NORM_INPUT).findFirst().orElseThrow());
    QuantSite boundary = split.get(at);
    assertEquals(vit.blocks().get(k).input(), boundary.tensor());
    assertEquals(8, boundary.bits(), "the stream crosses at 8 bits whatever the scheme's activations");
    assertEquals(k - 1, split.get(at - 1).block(), "after the sites of the block before");
    assertEquals(k, split.get(at + 1).block(), "before the boundary block's own");
    assertEquals(quantizedNorms, QuantSites.withBoundary(quantizedNorms, vit, Scheme.W4A4, k),
        "a plan quantizing the stream has its boundary already");
    assertEquals(sites, QuantSites.withBoundary(sites, vit, Scheme.W4A4, vit.blocks().size()), "no such split");
  }

  @Test
  void theEightBitImageCarriesEveryPixelValueAndTheFourBitOneDoesNot() throws Exception {
    Preprocessing pre = data.preprocessing();
    Quantizer eight = imageQuantizer(Technique.defaults(Scheme.W4A4));
    Quantizer four = imageQuantizer(w4a4WithoutImage8Bit());
    for (int c = 0; c < 3; c++) {
      double level = pre.scale() / pre.std()[c];
      double eightWorst = 0;
      double fourWorst = 0;
      for (int p = 0; p <= 255; p++) {
        float x = (float) ((p * pre.scale() - pre.mean()[c]) / pre.std()[c]);
        eightWorst = Math.max(eightWorst, Math.abs(eight.fakeQuant(x, eight.perChannel() ? c : 0) - x));
        fourWorst = Math.max(fourWorst, Math.abs(four.fakeQuant(x, 0) - x));
      }
      // The 8-bit levels sit on the pixel grid, shifted at most by rounding the mean to a level.
      assertTrue(eightWorst <= 0.5 * level + 1e-6, "channel " + c + ": " + eightWorst / level + " pixel levels");
      assertTrue(fourWorst >= 4 * level, "channel " + c + ": 4 bits lose " + fourWorst / level + " pixel levels");
    }
  }

  private static Quantizer imageQuantizer(Set<Technique> techniques) throws Exception {
    QuantPlan plan = Calibrator.calibrate(model, vit.input(), QuantSites.of(vit, Scheme.W4A4, techniques), "sha", data,
        new Calibrator.Settings(Scheme.W4A4, Method.MSE, 4, 0, SESSION, techniques), Progress.NONE).plan();
    return plan.entries().stream().filter(e -> e.role() == Role.CONV_INPUT).findFirst().orElseThrow().quantizer();
  }
}
