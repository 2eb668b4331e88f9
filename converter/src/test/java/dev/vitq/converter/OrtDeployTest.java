package dev.vitq.converter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.Model;
import dev.vitq.models.UnusedParts;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.Scheme;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The deploy passes leave nothing unread in what ships: ONNX Runtime would otherwise print a warning per unread
 * constant at every load (the query scalings folded into their quantizers leave one per block), and the outputs are
 * those of the passes without the clean-up, to the bit.
 */
class OrtDeployTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 2, 2, 64, 5);

  @ParameterizedTest
  @EnumSource(value = Scheme.class, names = {"W8A8", "W4A8", "W6A6", "W4A4"})
  void shipsNoUnreadConstantAndComputesTheSame(Scheme scheme) throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 3), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    Model lowered = QdqLowering.lower(model, FixedPlans.plan(model, vit, scheme), QdqLowering.Mode.DEPLOY);
    Model uncleaned = FastLayerNorm.apply(IntegerKernels.apply(lowered), vit, vit.tokens());
    assertFalse(UnusedParts.of(uncleaned).isEmpty(), "the fused passes leave the folded scalings' constants");

    Model deployed = OrtDeploy.apply(lowered, vit, vit.tokens());

    assertEquals(List.of(), UnusedParts.of(deployed));
    assertEquals(uncleaned.graph().nodes(), deployed.graph().nodes(), "only unread tensors go");
    assertArrayEquals(run(uncleaned), run(deployed));
  }

  private static float[] run(Model m) throws Exception {
    float[] pixels = new float[4 * 3 * 32 * 32];
    Random rng = new Random(5);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {4, 3, 32, 32}, pixels);
    try (InferenceSession s = InferenceSession.of(m, InferenceSession.Config.defaults())) {
      return s.run(Map.of(VitBuilder.INPUT, x), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
  }
}
