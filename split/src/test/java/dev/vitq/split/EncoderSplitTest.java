package dev.vitq.split;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.converter.Target;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.converter.FixedPlans;
import dev.vitq.converter.OrtDeploy;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.EncoderFeatures;
import dev.vitq.models.builder.EncoderFeatures.Mlp;
import dev.vitq.models.builder.EncoderFeatures.Output;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Scheme;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Encoders without a classifier split as classifiers do: device then cloud computes the single quantized model's
 * output (an embedding, or the tokens) with its stream quantized at the boundary; the token reductions that do not fit
 * an encoder are refused in one sentence.
 */
class EncoderSplitTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 3, 2, 64, 5);

  static Stream<Arguments> encoders() {
    return Stream.of(
        Arguments.of("dinov2", new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4)),
        Arguments.of("siglip", new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false, false, 0)),
        Arguments.of("eva02", new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0)),
        Arguments.of("tokens", new EncoderFeatures(Output.TOKENS, Mlp.GELU, false, false, 0)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("encoders")
  void deviceThenCloudIsTheSingleQuantizedEncoder(String name, EncoderFeatures features) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, features, 4), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, name).require();
    QuantPlan plan = FixedPlans.plan(model, vit, Scheme.W8A8);
    Split.Parts parts = Split.of(model, model, vit, plan, 1, new Reduction.None(), false, null, Target.CPU);
    HostTensor images = images();
    float[] split;
    String out = vit.output();
    try (InferenceSession device = InferenceSession.of(parts.device(), InferenceSession.Config.defaults());
        InferenceSession cloud = InferenceSession.of(parts.cloud(), InferenceSession.Config.defaults())) {
      HostTensor tokens = device.run(Map.of(VitBuilder.INPUT, images), List.of(Bundle.TOKENS)).get(Bundle.TOKENS);
      split = cloud.run(Map.of(Bundle.TOKENS, tokens), List.of(out)).get(out).floats();
    }
    String boundary = vit.blocks().get(1).input();
    float[] atBoundary = run(OrtDeploy.apply(QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY,
        Set.of(boundary)), vit, vit.tokens()), images, out);
    assertArrayEquals(atBoundary, split, 1e-5f);
    assertEquals(6L * (features.output() == Output.TOKENS ? vit.tokens() * CONFIG.embedDim() : CONFIG.embedDim()),
        split.length, "the model's own output: one vector per image, or per token");
  }

  @Test
  void keepTokensNeedsAClassTokenAndSaysSoInOneSentence() throws Exception {
    VitStructure siglip = withoutPrefixTokens(recognise(new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false,
        false, 0)));
    VitqException e = assertThrows(VitqException.class, () -> Split.tokensAfter(siglip,
        new Reduction.Attention(0.5, false)));
    assertEquals("--keep-tokens ranks patch tokens by the class token's attention, and this model has no class "
        + "token; use --pool 2 or --merge N instead.", e.getMessage());
    // Pooling and merging need no class token: they reduce the patch tokens alone.
    assertEquals(4, Split.tokensAfter(siglip, new Reduction.Pool(2)));
    assertEquals(12, Split.tokensAfter(siglip, new Reduction.Merge(4)));
    assertEquals(List.of(new Reduction.None(), new Reduction.Merge(4), new Reduction.Merge(8), new Reduction.Pool(2)),
        BoundaryBudget.reductions(siglip), "the budget tries only what fits");
  }

  @Test
  void rotaryEncodersAndTokenOutputsKeepEveryToken() throws Exception {
    VitStructure eva = recognise(new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0));
    VitqException e = assertThrows(VitqException.class, () -> Split.tokensAfter(eva, new Reduction.Pool(2)));
    assertTrue(e.getMessage().contains("rotary embedding"), e.getMessage());
    VitStructure tokens = recognise(new EncoderFeatures(Output.TOKENS, Mlp.GELU, false, false, 0));
    e = assertThrows(VitqException.class, () -> Split.tokensAfter(tokens, new Reduction.Merge(2)));
    assertTrue(e.getMessage().contains("outputs one vector per token"), e.getMessage());
    assertEquals(List.of(new Reduction.None()), BoundaryBudget.reductions(eva));
    assertEquals(List.of(new Reduction.None()), BoundaryBudget.reductions(tokens));
    // A DINOv2-like encoder (four registers after the class token) takes every reduction.
    VitStructure dinov2 = recognise(new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4));
    assertEquals(6, BoundaryBudget.reductions(dinov2).size());
    assertEquals(5 + 8, Split.tokensAfter(dinov2, new Reduction.Attention(0.5, false)));
  }

  @Test
  void theManifestSaysWhatTheCloudOutputsWhenItIsNotLogits() throws Exception {
    assertEquals("embedding", Manifest.outputKind(recognise(new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU,
        false, false, 0))));
    assertEquals("tokens", Manifest.outputKind(recognise(new EncoderFeatures(Output.TOKENS, Mlp.GELU, false, false,
        0))));
  }

  private static VitStructure recognise(EncoderFeatures features) throws VitqException {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, features, 4), 32, 32);
    return VitRecognizer.recognize(model, "test").require();
  }

  /** The structure as a model without class or register tokens (SigLIP's) would be recognised: patches only. */
  private static VitStructure withoutPrefixTokens(VitStructure v) {
    VitStructure.Embedding e = v.embedding();
    VitStructure.Embedding patchesOnly = new VitStructure.Embedding(e.conv(), e.convInput(), e.weight(), e.bias(), null,
        e.positionEmbedding(), e.preNorm(), e.output(), 0);
    return new VitStructure(v.input(), v.output(), patchesOnly, v.blocks(), v.finalNorm(), v.head(), v.embedDim(),
        v.heads(), v.tokens() - e.prefixTokens(), v.imageSize(), v.patchSize(), v.classes());
  }

  private static HostTensor images() {
    float[] pixels = new float[6 * 3 * 32 * 32];
    Random rng = new Random(8);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    return HostTensor.ofFloats(new long[] {6, 3, 32, 32}, pixels);
  }

  private static float[] run(Model m, HostTensor images, String out) throws Exception {
    try (InferenceSession s = InferenceSession.of(m, InferenceSession.Config.defaults())) {
      return s.run(Map.of(VitBuilder.INPUT, images), List.of(out)).get(out).floats();
    }
  }
}
