package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** RepQ-ViT's reparameterisation changes the float network not at all and the quantization levels not at all. */
class LayerNormReparamTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);

  /** Per-channel quantizers with channel ranges spread over two orders of magnitude, as after a LayerNorm. */
  static Quantizer spread(int channels, int bits, long seed) {
    Random rng = new Random(seed);
    float[] scales = new float[channels];
    int[] zeros = new int[channels];
    int qmax = (1 << bits) - 1;
    for (int c = 0; c < channels; c++) {
      scales[c] = (float) (0.01 * Math.pow(100, rng.nextDouble()));
      zeros[c] = rng.nextInt(qmax + 1);
    }
    return new Quantizer(Quantizer.Kind.UNIFORM, bits, false, 2, scales, zeros);
  }

  /** The post-norm linear inputs of a model, each with a spread per-channel quantizer. */
  static List<PlanEntry> postNormEntries(Model model, VitStructure vit, int bits) {
    GraphIndex idx = GraphIndex.of(model.graph());
    List<PlanEntry> entries = new ArrayList<>();
    for (QuantSite s : QuantSites.of(vit, Scheme.W8A8)) {
      if (s.role() == Role.LINEAR_INPUT && LayerNormReparam.find(idx, s.tensor()).isPresent()) {
        entries.add(new PlanEntry(s.tensor(), s.role(), s.block(), spread(vit.embedDim(), bits, entries.size())));
      }
    }
    return entries;
  }

  @ParameterizedTest
  @EnumSource(Spelling.class)
  void foldedFloatModelComputesTheSame(Spelling spelling) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, spelling, 5), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    List<PlanEntry> entries = postNormEntries(model, vit, 4);
    // Both norms of every block feed biased linear layers in every spelling the builder writes.
    assertEquals(2 * vit.blocks().size(), entries.size(), "reparameterisable post-norm inputs");
    Graph folded = LayerNormReparam.apply(model.graph(), entries);
    assertNotEquals(model.graph().initializers(), folded.initializers(), "the fold changes the constants");

    float[] pixels = new float[2 * 3 * 32 * 32];
    Random rng = new Random(9);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {2, 3, 32, 32}, pixels);
    float[] before = run(model, x);
    float[] after = run(model.withGraph(folded), x);
    double maxAbs = 0;
    double maxDiff = 0;
    for (int i = 0; i < before.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(before[i]));
      maxDiff = Math.max(maxDiff, Math.abs(before[i] - after[i]));
    }
    assertTrue(maxDiff <= 1e-4 * Math.max(1, maxAbs), "float outputs moved by " + maxDiff + " of " + maxAbs);
  }

  private static float[] run(Model model, HostTensor x) throws VitqException {
    try (InferenceSession s = InferenceSession.of(model, InferenceSession.Config.defaults())) {
      return s.run(Map.of(VitBuilder.INPUT, x), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
  }

  @Test
  void perTensorLevelsOfTheShiftedValuesAreThePerChannelLevels() {
    for (int bits : new int[] {4, 6, 8}) {
      Quantizer q = spread(64, bits, bits);
      Quantizer t = Quantizer.asymmetric(bits, 0, 1).withScales(new float[] {LayerNormReparam.tensorScale(q)});
      int z = LayerNormReparam.tensorZero(q);
      double s = LayerNormReparam.tensorScale(q);
      Random rng = new Random(bits);
      int differing = 0;
      int values = 0;
      for (int c = 0; c < 64; c++) {
        double r = q.scale(c) / s;
        double b = s * (q.zeroPoints()[c] - z);
        for (int k = 0; k < 200; k++) {
          // Values across and beyond the channel's range.
          float x = (float) ((rng.nextDouble() * 1.4 - 0.2 + (-q.zeroPoints()[c]) / (double) q.qmax())
              * q.qmax() * q.scale(c));
          int perChannel = q.quantize(x, c);
          long shifted = Math.round((x / r + b) / s) + z;
          int perTensor = (int) Math.max(0, Math.min(t.qmax(), shifted));
          values++;
          if (perChannel != perTensor) {
            differing++;
            // Only a value on a rounding boundary may land on the neighbouring level.
            assertEquals(perChannel, perTensor, 1, "bits " + bits + " channel " + c + " x " + x);
          }
        }
      }
      assertTrue(differing <= values / 1000, differing + " of " + values + " levels differ at " + bits + " bits");
    }
  }

  @Test
  void activationsNotFedByANormAreRefused() throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 5), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    GraphIndex idx = GraphIndex.of(model.graph());
    String fc2Input = vit.blocks().get(0).mlp().fc2().matmulInput();
    assertFalse(LayerNormReparam.find(idx, fc2Input).isPresent(), "a GELU output is not a norm's");
    PlanEntry bad = new PlanEntry(fc2Input, Role.LINEAR_INPUT, 0, spread(64, 4, 1));
    VitqException e = assertThrows(VitqException.class,
        () -> LayerNormReparam.apply(model.graph(), List.of(bad)));
    assertTrue(e.getMessage().contains("layer norm"), e.getMessage());
  }
}
