package dev.vitq.quantizer;

import dev.vitq.calibration.Histogram;

/** Initial scales: for activations from calibration histograms, for weights from the weights themselves. */
public final class ScaleInit {
  /** Clip ratios tried for weights: 1.00, 0.99, ..., 0.40. */
  private static final int WEIGHT_GRID = 61;
  /** Candidate range ends tried per side for activations. */
  private static final int ACTIVATION_GRID = 128;

  private ScaleInit() {}

  /** A per-tensor unsigned quantizer for an activation. */
  public static Quantizer activation(Histogram h, int bits, Method method) {
    return switch (method) {
      case MINMAX -> Quantizer.asymmetric(bits, h.min(), h.max());
      case PERCENTILE -> Quantizer.asymmetric(bits, h.quantile(Method.PERCENTILE_TAIL),
          h.quantile(1 - Method.PERCENTILE_TAIL));
      case MSE -> mseActivation(h, bits);
    };
  }

  /** Quarter octaves between the candidate top levels of a logarithmic quantizer. */
  private static final int LOG_STEPS_PER_OCTAVE = 4;

  /**
   * A logarithmic quantizer ({@code base}, levels {@code 2^(-q/k)} below 1) with its top level {@code s} moved down
   * to where the values are when they stay below one half: each candidate from 1/2 down to the largest value
   * observed, a quarter octave apart, and the one with the least squared error on the histogram kept if it beats 1.
   * Attention over many tokens never comes near 1: with 261 tokens a uniform probability is 0.0038, below a 4-bit
   * log-sqrt(2) grid's smallest level (2^-7), so every such weight would round to 0 or double.
   */
  public static Quantizer logScale(Histogram h, Quantizer base) {
    long[] counts = h.counts();
    double width = (h.hi() - h.lo()) / counts.length;
    double max = Math.min(1, h.max());
    Quantizer best = base;
    double bestErr = logError(counts, h.lo(), width, base);
    // From half down: a fraction of an octave would move which values round where without adding a level below.
    for (int j = LOG_STEPS_PER_OCTAVE; max > 0 && Math.pow(2, -(double) j / LOG_STEPS_PER_OCTAVE) >= max * 0.999;
        j++) {
      Quantizer q = base.withScales(new float[] {(float) Math.pow(2, -(double) j / LOG_STEPS_PER_OCTAVE)});
      double err = logError(counts, h.lo(), width, q);
      if (err < bestErr) {
        best = q;
        bestErr = err;
      }
    }
    return best;
  }

  private static double logError(long[] counts, double lo, double width, Quantizer q) {
    double err = 0;
    for (int b = 0; b < counts.length; b++) {
      if (counts[b] != 0) {
        float x = (float) (lo + (b + 0.5) * width);
        double d = q.fakeQuant(x, 0) - x;
        err += counts[b] * d * d;
      }
    }
    return err;
  }

  /**
   * A per-tensor quantizer widened per channel by power-of-two factors (FQ-ViT's power-of-two factor): channel
   * {@code c} of the last axis uses scale {@code s * 2^k_c}, the least {@code k_c <= maxShift} that covers the
   * channel's observed range, with one shared zero point. The residual stream has a few channels tens of times wider
   * than the rest; one scale for all would either clip them or round the others away.
   *
   * @param base the per-tensor quantizer chosen for the typical channels
   * @param axis the channel axis of the tensor (its last)
   */
  public static Quantizer powerOfTwoChannels(Quantizer base, float[] channelMin, float[] channelMax, int axis,
      int maxShift) {
    float s = base.scale(0);
    int z = base.zeroPoints()[0];
    double lo = (base.qmin() - z) * (double) s;
    double hi = (base.qmax() - z) * (double) s;
    float[] scales = new float[channelMin.length];
    int[] zeros = new int[channelMin.length];
    for (int c = 0; c < scales.length; c++) {
      double need = Math.max(channelMax[c] / hi, lo < 0 ? channelMin[c] / lo : 0);
      int k = need <= 1 ? 0 : (int) Math.ceil(Math.log(need) / Math.log(2) - 1e-9);
      scales[c] = s * (1 << Math.min(k, maxShift));
      zeros[c] = z;
    }
    return new Quantizer(Quantizer.Kind.UNIFORM, base.bits(), base.signed(), axis, scales, zeros);
  }

  /**
   * The range with the least expected squared error, by coordinate search over each end. A value inside the range
   * costs {@code s^2 / 12} (uniform rounding noise); outside, its squared distance to the nearer end.
   */
  private static Quantizer mseActivation(Histogram h, int bits) {
    long[] counts = h.counts();
    double width = (h.hi() - h.lo()) / counts.length;
    double[] centres = new double[counts.length];
    for (int b = 0; b < counts.length; b++) {
      centres[b] = h.lo() + (b + 0.5) * width;
    }
    double lo = Math.min(0, h.min());
    double hi = Math.max(0, h.max());
    int levels = (1 << bits) - 1;
    for (int round = 0; round < 3; round++) {
      hi = best(counts, centres, lo, Math.max(0, h.max()), levels, true, lo);
      lo = best(counts, centres, Math.min(0, h.min()), hi, levels, false, hi);
    }
    return Quantizer.asymmetric(bits, lo, hi);
  }

  /** The best end on one side with the other end fixed: shrinks {@code lo..hi} towards zero on that side. */
  private static double best(long[] counts, double[] centres, double lo, double hi, int levels, boolean upper,
      double fixed) {
    double extreme = upper ? hi : lo;
    double bestEnd = extreme;
    double bestErr = Double.POSITIVE_INFINITY;
    for (int k = 0; k < ACTIVATION_GRID; k++) {
      double end = extreme * (1 - (double) k / ACTIVATION_GRID);
      double a = upper ? fixed : end;
      double b = upper ? end : fixed;
      double err = expectedError(counts, centres, a, b, levels);
      if (err < bestErr) {
        bestErr = err;
        bestEnd = end;
      }
    }
    return bestEnd;
  }

  static double expectedError(long[] counts, double[] centres, double lo, double hi, int levels) {
    double s = (hi - lo) / levels;
    double noise = s * s / 12;
    double err = 0;
    for (int b = 0; b < counts.length; b++) {
      long c = counts[b];
      if (c == 0) {
        continue;
      }
      double x = centres[b];
      if (x < lo) {
        err += c * (lo - x) * (lo - x);
      } else if (x > hi) {
        err += c * (x - hi) * (x - hi);
      } else {
        err += c * noise;
      }
    }
    return err;
  }

  /**
   * A twin uniform quantizer for a GELU output ({@link Quantizer#twin}), or the method's uniform one when that has
   * the smaller squared error on the histogram. Every split {@code z} of the levels and every power-of-two ratio
   * {@code 2^m} of the scales whose levels fit 8 bits is tried, each with {@value #ACTIVATION_GRID} clippings of the
   * negative side and as many of the positive side as the negative scale; the least squared error of rounding and
   * clipping, measured at the bin centres, wins (rounding measured, not modelled: a side a few levels wide rounds most
   * of its values to zero).
   */
  public static Quantizer twin(Histogram h, int bits, Method method) {
    Quantizer uniform = activation(h, bits, method);
    if (!(h.min() < 0 && h.max() > 0)) {
      return uniform;
    }
    long[] counts = h.counts();
    double[] centres = centres(h);
    int qmax = (1 << bits) - 1;
    Quantizer best = uniform;
    double bestError = squaredError(counts, centres, uniform);
    for (int z = 1; z < qmax; z++) {
      for (int m = 0; (long) (qmax - z) << m <= 255 - z; m++) {
        for (int k = 0; k < 2 * ACTIVATION_GRID; k++) {
          // Half the candidates clip the negative side, half the positive side (through the ratio).
          double shrink = 1 - (double) (k % ACTIVATION_GRID) / ACTIVATION_GRID;
          float negative = (float) (k < ACTIVATION_GRID ? -h.min() * shrink / z
              : h.max() * shrink / ((double) (qmax - z) * (1 << m)));
          if (!(negative > 0) || Float.isInfinite(Math.scalb(negative, m))) {
            continue;
          }
          Quantizer candidate = Quantizer.twin(bits, z, negative, m);
          double e = squaredError(counts, centres, candidate);
          if (e < bestError) {
            bestError = e;
            best = candidate;
          }
        }
      }
    }
    return best;
  }

  /** Squared error of the histogram's values (bin centres) through {@code q}. */
  static double histogramError(Histogram h, Quantizer q) {
    return squaredError(h.counts(), centres(h), q);
  }

  /** Squared error of the values at {@code centres}, {@code counts} of each, through {@code q}. */
  private static double squaredError(long[] counts, double[] centres, Quantizer q) {
    double err = 0;
    for (int b = 0; b < counts.length; b++) {
      if (counts[b] != 0) {
        double d = centres[b] - q.fakeQuant((float) centres[b], 0);
        err += counts[b] * d * d;
      }
    }
    return err;
  }

  /** The centre of every bin, where the squared errors above place the bin's values. */
  private static double[] centres(Histogram h) {
    double[] centres = new double[h.bins()];
    for (int b = 0; b < centres.length; b++) {
      centres[b] = h.lo() + (b + 0.5) * h.binWidth();
    }
    return centres;
  }

  /**
   * A symmetric per-output-channel quantizer for a 2-D or 4-D weight.
   *
   * @param w the weight, row-major
   * @param dims its shape
   * @param axis the output-channel axis (0 or 1 for 2-D weights, 0 for convolutions)
   */
  public static Quantizer weight(float[] w, long[] dims, int axis, int bits, Method method) {
    int channels = (int) dims[axis];
    int qmax = Quantizer.qmax(bits, true);
    float[][] perChannel = channels(w, dims, axis);
    float[] scales = new float[channels];
    for (int c = 0; c < channels; c++) {
      float[] v = perChannel[c];
      float absMax = 0;
      for (float x : v) {
        absMax = Math.max(absMax, Math.abs(x));
      }
      if (absMax == 0) {
        scales[c] = 1e-8f;
        continue;
      }
      if (method == Method.MINMAX) {
        scales[c] = absMax / qmax;
        continue;
      }
      float bestScale = absMax / qmax;
      double bestErr = Double.POSITIVE_INFINITY;
      for (int k = 0; k < WEIGHT_GRID; k++) {
        float s = absMax * (1 - k / 100f) / qmax;
        double err = 0;
        for (float x : v) {
          long q = Math.max(-qmax, Math.min(qmax, Math.round(x / s)));
          double d = x - q * s;
          err += d * d;
        }
        if (err < bestErr) {
          bestErr = err;
          bestScale = s;
        }
      }
      scales[c] = bestScale;
    }
    for (int c = 0; c < channels; c++) {
      scales[c] = toHalfGrid(scales[c]);
    }
    return Quantizer.symmetric(bits, axis, scales);
  }

  /**
   * The nearest float16 value at or above {@code s} when {@code s} is in float16's normal range, so deployed models
   * can store weight scales in half the bytes without changing them; {@code s} itself otherwise.
   */
  public static float toHalfGrid(float s) {
    if (!(s >= QdqLowering.MIN_NORMAL_HALF) || s > 60000f) {
      return s;
    }
    short bits = Float.floatToFloat16(s);
    float h = Float.float16ToFloat(bits);
    // Rounding up (positive float16 values order like their bits) keeps the largest weight inside the range.
    return h >= s ? h : Float.float16ToFloat((short) (bits + 1));
  }

  /** The weight's values grouped by output channel. */
  static float[][] channels(float[] w, long[] dims, int axis) {
    int channels = (int) dims[axis];
    int per = w.length / channels;
    float[][] out = new float[channels][per];
    if (axis == 0) {
      for (int c = 0; c < channels; c++) {
        System.arraycopy(w, c * per, out[c], 0, per);
      }
    } else if (axis == 1 && dims.length == 2) {
      int cols = (int) dims[1];
      for (int r = 0; r < per; r++) {
        for (int c = 0; c < cols; c++) {
          out[c][r] = w[r * cols + c];
        }
      }
    } else {
      throw new IllegalArgumentException("Per-channel axis " + axis + " of a " + dims.length + "-D weight");
    }
    return out;
  }
}
