package dev.vitq.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.vitq.calibration.InferenceSession;
import dev.vitq.converter.Target;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.Technique;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The patch bias is corrected for the per-channel pixel grid, which targets without per-axis activations replace. */
class CorrectionsForTargetTest {
  @Test
  void targetsThatTakeOneRangeForTheImageGetNoPatchBiasCorrection() {
    Calibrator.Settings w8a8 = new Calibrator.Settings(Scheme.W8A8, Method.MSE, 8, 0,
        InferenceSession.Config.defaults());
    assertEquals(true, w8a8.techniques().contains(Technique.PATCH_BIAS_CORRECTION));
    for (Target t : new Target[] {Target.CPU, Target.QDQ}) {
      assertSame(w8a8, LoadedModel.correctionsFor(w8a8, t), t.cliName());
    }
    for (Target t : new Target[] {Target.QNN, Target.NNAPI, Target.COREML, Target.XNNPACK}) {
      Set<Technique> expected = EnumSet.copyOf(w8a8.techniques());
      expected.remove(Technique.PATCH_BIAS_CORRECTION);
      assertEquals(expected, LoadedModel.correctionsFor(w8a8, t).techniques(), t.cliName());
    }
  }
}
