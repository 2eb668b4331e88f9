package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.VitqException;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class QuantizerTest {
  @Test
  void asymmetricCoversItsRangeWithinHalfAStep() {
    Quantizer q = Quantizer.asymmetric(8, -1.5, 3.0);
    assertEquals(0.0f, q.fakeQuant(0f, 0), "zero is exact");
    Random rng = new Random(1);
    for (int i = 0; i < 10_000; i++) {
      float x = (float) (-1.5 + 4.5 * rng.nextDouble());
      assertTrue(Math.abs(q.fakeQuant(x, 0) - x) <= q.scale(0) / 2 + 1e-6, "x=" + x);
    }
    assertEquals(q.dequantize(q.qmax(), 0), q.fakeQuant(100f, 0), "clips above");
  }

  @Test
  void tinyRangesKeepTheirLevels() {
    for (double range : new double[] {1e-3, 1e-9, 1e-14, 1e-30}) {
      Quantizer q = Quantizer.asymmetric(8, -range, 2 * range);
      float x = (float) (1.5 * range);
      assertEquals(x, q.fakeQuant(x, 0), q.scale(0) / 2 * 1.001, "range " + range);
      assertTrue(q.fakeQuant(x, 0) != 0, "range " + range + ": " + q);
    }
    assertEquals(0f, Quantizer.asymmetric(8, 0, 0).fakeQuant(0f, 0), "an all-zero tensor stays exact");
  }

  @Test
  void narrowSchemesUseFewerLevels() {
    Quantizer q4 = Quantizer.asymmetric(4, 0, 1);
    assertEquals(15, q4.qmax());
    Quantizer w4 = Quantizer.symmetric(4, 0, new float[] {0.1f, 0.2f});
    assertEquals(-7, w4.qmin());
    assertEquals(7, w4.qmax());
    assertEquals(0.7f, w4.fakeQuant(5f, 0), 1e-6);
    assertEquals(-1.4f, w4.fakeQuant(-5f, 1), 1e-6);
  }

  @Test
  void aLogGridMovesItsTopLevelDownToAttentionOverManyTokensAndKeepsItForPeakedAttention() {
    Random rng = new Random(4);
    // Near-uniform attention over 261 tokens (DINOv2 at 224 px): every probability about 1/261.
    dev.vitq.calibration.Histogram flat = new dev.vitq.calibration.Histogram(2048);
    float[] p = new float[261 * 200];
    for (int i = 0; i < p.length; i++) {
      p[i] = (float) (1.0 / 261 * Math.exp(0.3 * rng.nextGaussian()));
    }
    flat.add(p);
    Quantizer base = Quantizer.logSqrt2(4);
    Quantizer moved = ScaleInit.logScale(flat, base);
    assertTrue(moved.scale(0) <= 0.5f && moved.scale(0) >= flat.max() * 0.999, "top level " + moved.scale(0));
    double before = 0;
    double after = 0;
    for (float x : p) {
      before += Math.pow(base.fakeQuant(x, 0) - x, 2);
      after += Math.pow(moved.fakeQuant(x, 0) - x, 2);
      float level = moved.fakeQuant(x, 0);
      // Within a quarter octave, as on a grid whose levels reach down past the values.
      assertTrue(level > 0 && Math.abs(level / x - 1) < 0.2 + 1e-3, x + " -> " + level);
    }
    assertTrue(after < before / 20, "squared error " + after + " against " + before + " on the unscaled grid");

    // Peaked attention reaching 1 keeps the unscaled grid, so plans of such models are what they were.
    dev.vitq.calibration.Histogram peaked = new dev.vitq.calibration.Histogram(2048);
    float[] q = new float[65 * 200];
    for (int i = 0; i < q.length; i++) {
      q[i] = i % 65 == 0 ? 0.999f : (float) (Math.exp(-6 * rng.nextDouble()) / 65);
    }
    peaked.add(q);
    assertEquals(base, ScaleInit.logScale(peaked, base));
  }

  @Test
  void log2LevelsArePowersOfTwoAndTheTopLevelIsZero() {
    Quantizer q = Quantizer.log2(4);
    assertEquals(1f, q.fakeQuant(0.9f, 0));
    assertEquals(0.25f, q.fakeQuant(0.26f, 0));
    assertEquals(0f, q.fakeQuant(1e-9f, 0));
    assertEquals(0f, q.fakeQuant(0f, 0));
  }

  @Test
  void logSqrt2KeepsEveryProbabilityWithinAQuarterOctaveAboveItsSmallestLevel() {
    for (int bits : new int[] {4, 6}) {
      Quantizer q = Quantizer.logSqrt2(bits);
      double smallest = Math.pow(2, -(q.qmax() - 1) / 2.0);
      java.util.Random rng = new java.util.Random(bits);
      for (int i = 0; i < 10_000; i++) {
        float x = (float) Math.pow(2, -rng.nextDouble() * (q.qmax() - 1) / 2.0);
        assertTrue(x >= smallest);
        float y = q.fakeQuant(x, 0);
        // Half-octave levels: the nearest in log space is at most a quarter octave away.
        assertTrue(Math.abs(Math.log(y / x) / Math.log(2)) <= 0.25 + 1e-6, bits + " bits: " + x + " -> " + y);
      }
      assertEquals(0f, q.fakeQuant(0f, 0));
      assertEquals(1f, q.fakeQuant(1f, 0));
      assertEquals((float) Math.sqrt(0.5), q.dequantize(1, 0), 1e-7f);
    }
  }

  @Test
  void twinUniformKeepsEachSideWithinHalfItsOwnStep() {
    Quantizer q = Quantizer.twin(4, 3, 0.05f, 2);
    Random rng = new Random(4);
    for (int i = 0; i < 10_000; i++) {
      float x = (float) (-0.15 + 2.55 * rng.nextDouble());
      float step = x < 0 ? 0.05f : 0.2f;
      assertTrue(Math.abs(q.fakeQuant(x, 0) - x) <= step / 2 + 1e-6, "x=" + x);
      assertTrue(q.quantize(x, 0) < 3 == x < -0.025f, "the negative levels lie below the zero point: " + x);
    }
    assertEquals(0f, q.fakeQuant(0f, 0), "zero is exact");
    assertEquals(-0.15f, q.fakeQuant(-1f, 0), 1e-6, "three negative levels");
    assertEquals(2.4f, q.fakeQuant(10f, 0), 1e-6, "twelve positive levels");
    Quantizer half = Quantizer.twin(4, 8, 0.02f, 4);
    assertEquals(-0.16f, half.dequantize(half.qmin(), 0), 1e-6, "PTQ4ViT's split: 8 levels below zero");
    assertEquals(7 * 0.32f, half.dequantize(half.qmax(), 0), 1e-6, "and 7 above");
    for (int level = half.qmin(); level <= half.qmax(); level++) {
      float fine = half.dequantize(level, 0) / half.scale(1);
      assertEquals(Math.round(fine), fine, 1e-4, "every level lies on the negative side's grid");
    }
  }

  @Test
  void twinScalesHaveLessErrorThanOneScaleOnGeluOutputsAndFallBackWithoutNegatives() {
    Random rng = new Random(5);
    dev.vitq.calibration.Histogram gelu = new dev.vitq.calibration.Histogram(4096);
    dev.vitq.calibration.Histogram relu = new dev.vitq.calibration.Histogram(4096);
    float[] x = new float[100_000];
    float[] r = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      double v = rng.nextGaussian() * 1.5 - 0.5;
      x[i] = (float) (0.5 * v * (1 + erf(v / Math.sqrt(2))));
      r[i] = (float) Math.max(0, v);
    }
    gelu.add(x);
    relu.add(r);
    for (int bits : new int[] {4, 6}) {
      Quantizer twin = ScaleInit.twin(gelu, bits, Method.MSE);
      Quantizer uniform = ScaleInit.activation(gelu, bits, Method.MSE);
      assertEquals(Quantizer.Kind.TWIN, twin.kind());
      assertTrue(twin.scale(1) < twin.scale(0) && twin.twinRatio() > 1, "finer below zero: " + twin);
      assertTrue(ScaleInit.histogramError(gelu, twin) < 0.9 * ScaleInit.histogramError(gelu, uniform),
          bits + " bits: " + twin + " against " + uniform);
      assertEquals(ScaleInit.activation(relu, bits, Method.MSE), ScaleInit.twin(relu, bits, Method.MSE),
          "no negative values, nothing to split");
    }
  }

  /** Abramowitz and Stegun 7.1.26, within 1.5e-7: enough to shape GELU-like test data. */
  private static double erf(double z) {
    double t = 1 / (1 + 0.3275911 * Math.abs(z));
    double y = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        * Math.exp(-z * z);
    return Math.signum(z) * y;
  }

  @Test
  void invalidQuantizersAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> new Quantizer(Quantizer.Kind.TWIN, 4, false, -1,
        new float[] {0.1f}, new int[] {3}));
    assertThrows(IllegalArgumentException.class, () -> new Quantizer(Quantizer.Kind.TWIN, 4, false, -1,
        new float[] {0.08f, 0.01f}, new int[] {3, 4}));
    assertThrows(IllegalArgumentException.class, () -> new Quantizer(Quantizer.Kind.TWIN, 4, false, -1,
        new float[] {0.1f, 0.03f}, new int[] {3, 3}), "a ratio that is not a power of two");
    assertThrows(IllegalArgumentException.class, () -> Quantizer.twin(6, 3, 0.01f, 3), "60 levels of 8 steps");
    assertThrows(IllegalArgumentException.class, () -> Quantizer.symmetric(9, 0, new float[] {1}));
    assertThrows(IllegalArgumentException.class, () -> Quantizer.log2(16), "16 bits are uniform levels only");
    assertThrows(IllegalArgumentException.class, () -> Quantizer.asymmetric(17, -1, 1));
    assertEquals(65535, Quantizer.asymmetric(16, -1, 1).qmax(), "uint16 activations");
    assertThrows(IllegalArgumentException.class, () -> Quantizer.symmetric(8, 0, new float[] {0}));
    assertThrows(IllegalArgumentException.class, () -> Quantizer.symmetric(8, 0, new float[] {Float.NaN}));
  }

  @Test
  void powerOfTwoFactorsWidenOnlyTheWideChannels() {
    Quantizer base = Quantizer.asymmetric(8, -2, 2);
    Quantizer q = ScaleInit.powerOfTwoChannels(base, new float[] {-1, -10, -1}, new float[] {1, 3, 50}, 2, 6);
    assertEquals(base.scale(0), q.scale(0));
    assertEquals(8 * base.scale(0), q.scale(1), 1e-9);
    assertEquals(32 * base.scale(0), q.scale(2), 1e-9);
    PlanEntry e = new PlanEntry("x", Role.NORM_INPUT, 0, q);
    assertEquals(base.scale(0), QdqLowering.scaleInput(e)[0]);
  }

  @Test
  void weightScalesLieOnTheHalfPrecisionGridAndMseBeatsMinMax() {
    Random rng = new Random(3);
    float[] w = new float[64 * 16];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rng.nextGaussian() * 0.05);
    }
    w[5] = 0.9f; // one outlier: MSE clips it, min-max stretches the grid for it
    long[] dims = {64, 16};
    Quantizer mse = ScaleInit.weight(w, dims, 1, 4, Method.MSE);
    Quantizer minmax = ScaleInit.weight(w, dims, 1, 4, Method.MINMAX);
    for (float s : mse.scales()) {
      assertEquals(s, Float.float16ToFloat(Float.floatToFloat16(s)));
    }
    assertTrue(error(w, mse) < error(w, minmax));
  }

  private static double error(float[] w, Quantizer q) {
    double e = 0;
    for (int i = 0; i < w.length; i++) {
      double d = w[i] - q.fakeQuant(w[i], i % 16);
      e += d * d;
    }
    return e;
  }

  @Test
  void plansRoundTripThroughJsonAndRejectGarbage() throws Exception {
    QuantPlan plan = new QuantPlan(QuantPlan.FORMAT, "abc", Scheme.W4A8, Method.MSE, "none", 42, 10,
        java.util.EnumSet.of(Technique.BIAS_CORRECTION), List.of(
        new PlanEntry("x", Role.LINEAR_INPUT, 0, Quantizer.asymmetric(8, -1, 1)),
        new PlanEntry("w", Role.WEIGHT, 0, Quantizer.symmetric(4, 1, new float[] {0.5f, 0.25f})),
        new PlanEntry("p", Role.SOFTMAX_OUTPUT, 0, Quantizer.log2(4)),
        new PlanEntry("g", Role.GELU_OUTPUT, 0, Quantizer.twin(4, 3, 0.05f, 2))));
    assertEquals(plan, QuantPlan.fromJson(plan.toJson()));
    String json = plan.toJson();
    assertTrue(json.contains("\"weight_corrections\" : [ \"BIAS_CORRECTION\" ]"), json);
    // A plan written before plans recorded their weight corrections gets its scheme's defaults (GPTQ and the patch
    // bias at W4A8).
    assertEquals(java.util.Set.of(Technique.GPTQ, Technique.PATCH_BIAS_CORRECTION), QuantPlan.fromJson(json.replace(
        "\"weight_corrections\" : [ \"BIAS_CORRECTION\" ],", "")).weightCorrections());
    VitqException notACorrection = assertThrows(VitqException.class, () -> QuantPlan.fromJson(json.replace(
        "[ \"BIAS_CORRECTION\" ]", "[ \"LN_REPARAM\" ]")));
    assertTrue(notACorrection.getMessage().contains(
        "only GPTQ, BIAS_CORRECTION and PATCH_BIAS_CORRECTION correct weights"),
        notACorrection.getMessage());
    assertThrows(VitqException.class, () -> QuantPlan.fromJson("{\"format\": \"other\"}"));
    assertThrows(VitqException.class, () -> QuantPlan.fromJson("not json"));
  }
}
