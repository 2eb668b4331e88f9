package dev.vitq.quantizer;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's quantizer: uniform (affine), twin uniform or logarithmic, per tensor or per channel.
 *
 * <p>Uniform: {@code q = clamp(round(x / s) + z, qmin, qmax)}, {@code x' = (q - z) * s}. Symmetric signed
 * quantizers use the narrow range {@code [-(2^(b-1) - 1), 2^(b-1) - 1]} with {@code z = 0}, as int8 weight kernels
 * expect; unsigned ones use {@code [0, 2^b - 1]}.
 *
 * <p>Log2 (for softmax outputs in [0, 1]): {@code q = clamp(round(-log2 x), 0, 2^b - 1)}, {@code x' = 2^-q}, and
 * the top level stands for 0. Log-sqrt(2): the same with half steps, {@code q = clamp(round(-2 log2 x), 0, 2^b - 1)},
 * {@code x' = 2^(-q/2)}: finer where the large probabilities are, coarser in the tail.
 *
 * <p>Twin uniform (for GELU outputs, whose negative part lies in [-0.17, 0] while the positive part reaches tens):
 * unsigned levels with zero point {@code z}, the levels below {@code z} spaced by a scale of their own, {@code
 * scales = {s_pos, s_neg}} with {@code s_pos = 2^m s_neg}. {@code q = z + round(x / s_neg)} for {@code x < 0},
 * {@code z + round(x / s_pos)} otherwise, each clamped to its side; {@code x' = (q - z) * s_neg} below {@code z},
 * {@code (q - z) * s_pos} from it. Every value lies on the 8-bit grid of step {@code s_neg} from {@code -z s_neg},
 * so an integer kernel can read it. PTQ4ViT's twin uniform is the case {@code z = 2^(b-1)}.
 *
 * @param kind uniform, twin uniform or logarithmic
 * @param bits 2 to 8, or up to 16 for unsigned uniform activations (uint16 levels, as QNN's HTP runs them)
 * @param signed whether levels go below zero
 * @param axis the channel axis for per-channel quantization, or -1 for per tensor
 * @param scales one scale per channel (one for per tensor; positive then negative for twin uniform); for log2 unused
 *     and {1}
 * @param zeroPoints one zero point per scale
 */
public record Quantizer(Kind kind, int bits, boolean signed, int axis, float[] scales, int[] zeroPoints) {
  /** Quantizer families. */
  public enum Kind { UNIFORM, TWIN, LOG2, LOG_SQRT2 }

  public Quantizer {
    Objects.requireNonNull(kind, "kind");
    if (bits < 2 || bits > 16 || bits > 8 && (kind != Kind.UNIFORM || signed)) {
      throw new IllegalArgumentException("Bits must be 2..8, or up to 16 for an unsigned uniform quantizer (uint16 "
          + "activations), got " + bits);
    }
    if (scales.length == 0 || scales.length != zeroPoints.length) {
      throw new IllegalArgumentException("Need one scale and zero point per channel");
    }
    if (axis < 0 && scales.length != (kind == Kind.TWIN ? 2 : 1)) {
      throw new IllegalArgumentException("A per-tensor quantizer has one scale, a twin uniform one two");
    }
    int ratio = kind == Kind.TWIN ? twinRatio(scales[0], scales[1]) : 1;
    if (kind == Kind.TWIN && (axis >= 0 || signed || zeroPoints[0] != zeroPoints[1] || ratio < 0
        || (long) (qmax(bits, false) - zeroPoints[0]) * ratio + zeroPoints[0] > 255)) {
      throw new IllegalArgumentException("A twin uniform quantizer is unsigned and per tensor, with one zero point "
          + "and a positive scale 2^m times the negative one whose levels fit 8 bits");
    }
    for (float s : scales) {
      if (!(s > 0) || Float.isInfinite(s)) {
        throw new IllegalArgumentException("Scales must be positive and finite, got " + s);
      }
    }
    scales = scales.clone();
    zeroPoints = zeroPoints.clone();
    for (int z : zeroPoints) {
      if (z < qmin(bits, signed) || z > qmax(bits, signed)) {
        throw new IllegalArgumentException("Zero point " + z + " outside [" + qmin(bits, signed) + ", "
            + qmax(bits, signed) + "]");
      }
    }
  }

  /** A symmetric signed per-channel quantizer with the given scales. */
  public static Quantizer symmetric(int bits, int axis, float[] scales) {
    return new Quantizer(Kind.UNIFORM, bits, true, axis, scales, new int[scales.length]);
  }

  /** An unsigned per-tensor quantizer covering [lo, hi] (widened to include 0, as ONNX requires). */
  public static Quantizer asymmetric(int bits, double lo, double hi) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
    int qmax = (1 << bits) - 1;
    double scale = (hi - lo) / qmax;
    // Only a tensor that is always 0 (or whose range a float scale cannot resolve) gets a stand-in scale, which
    // represents 0 exactly: a fixed floor (1e-12 before) rounded every value of a tiny but live tensor to 0.
    if (!((float) scale >= Float.MIN_NORMAL)) {
      scale = hi > lo ? Float.MIN_NORMAL : 1;
    }
    int zero = (int) Math.max(0, Math.min(qmax, Math.round(-lo / scale)));
    return new Quantizer(Kind.UNIFORM, bits, false, -1, new float[] {(float) scale}, new int[] {zero});
  }

  /**
   * A twin uniform quantizer: {@code zero} levels below zero spaced by {@code negativeScale}, the rest above it by
   * {@code 2^shift} times that.
   */
  public static Quantizer twin(int bits, int zero, float negativeScale, int shift) {
    return new Quantizer(Kind.TWIN, bits, false, -1, new float[] {Math.scalb(negativeScale, shift), negativeScale},
        new int[] {zero, zero});
  }

  /** {@code s_pos / s_neg} if it is a power of two (at least 1), else -1. */
  static int twinRatio(float positive, float negative) {
    float r = positive / negative;
    return r >= 1 && r <= 128 && Math.scalb(negative, Math.getExponent(r)) == positive ? 1 << Math.getExponent(r) : -1;
  }

  /** How many steps of the negative scale one positive step spans: {@code 2^m}. */
  public int twinRatio() {
    return twinRatio(scales[0], scales[1]);
  }

  /**
   * A log2 quantizer for values in [0, 1]: levels {@code 2^-q}, and 0 at the top level. {@link #withScales} with one
   * scale {@code s} moves the levels to {@code s 2^-q}, for probabilities that never come near 1.
   */
  public static Quantizer log2(int bits) {
    return new Quantizer(Kind.LOG2, bits, false, -1, new float[] {1f}, new int[] {0});
  }

  /** A log-sqrt(2) quantizer for values in [0, 1]: levels {@code 2^(-q/2)}, scaled as {@link #log2}'s. */
  public static Quantizer logSqrt2(int bits) {
    return new Quantizer(Kind.LOG_SQRT2, bits, false, -1, new float[] {1f}, new int[] {0});
  }

  /** Levels per octave of a logarithmic quantizer: 1 for log2, 2 for log-sqrt(2). */
  public int levelsPerOctave() {
    return kind == Kind.LOG_SQRT2 ? 2 : 1;
  }

  static int qmin(int bits, boolean signed) {
    return signed ? -((1 << (bits - 1)) - 1) : 0;
  }

  static int qmax(int bits, boolean signed) {
    return signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  }

  /** The lowest level. */
  public int qmin() {
    return qmin(bits, signed);
  }

  /** The highest level. */
  public int qmax() {
    return qmax(bits, signed);
  }

  public boolean perChannel() {
    return axis >= 0;
  }

  /** The level {@code x} rounds to in channel {@code c}. */
  public int quantize(float x, int c) {
    if (kind == Kind.TWIN) {
      int z = zeroPoints[0];
      return x < 0 ? z + (int) Math.max(-z, Math.round(x / scales[1]))
          : z + (int) Math.min(qmax() - z, Math.round(x / scales[0]));
    }
    if (kind != Kind.UNIFORM) {
      if (!(x > 0)) {
        return qmax();
      }
      long q = Math.round(-levelsPerOctave() * Math.log(x / scales[0]) / Math.log(2));
      return (int) Math.max(0, Math.min(qmax(), q));
    }
    long q = Math.round(x / scales[c]) + zeroPoints[c];
    return (int) Math.max(qmin(), Math.min(qmax(), q));
  }

  /** The value of level {@code q} in channel {@code c}. */
  public float dequantize(int q, int c) {
    if (kind == Kind.TWIN) {
      return (q - zeroPoints[0]) * scales[q < zeroPoints[0] ? 1 : 0];
    }
    if (kind != Kind.UNIFORM) {
      return q >= qmax() ? 0f : (float) (scales[0] * Math.pow(2, -(double) q / levelsPerOctave()));
    }
    return (q - zeroPoints[c]) * scales[c];
  }

  /** {@code x} quantized and dequantized in channel {@code c}. */
  public float fakeQuant(float x, int c) {
    return dequantize(quantize(x, c), c);
  }

  @Override
  public float[] scales() {
    return scales.clone();
  }

  @Override
  public int[] zeroPoints() {
    return zeroPoints.clone();
  }

  /** The scale of channel {@code c}, without copying. */
  public float scale(int c) {
    return scales[c];
  }

  /** This quantizer with other scales (zero points kept). */
  public Quantizer withScales(float[] newScales) {
    return new Quantizer(kind, bits, signed, axis, newScales, zeroPoints);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Quantizer q && q.kind == kind && q.bits == bits && q.signed == signed && q.axis == axis
        && Arrays.equals(q.scales, scales) && Arrays.equals(q.zeroPoints, zeroPoints);
  }

  @Override
  public int hashCode() {
    return Objects.hash(kind, bits, signed, axis, Arrays.hashCode(scales), Arrays.hashCode(zeroPoints));
  }

  @Override
  public String toString() {
    return kind + "/" + bits + (signed ? "s" : "u") + (perChannel() ? "[axis " + axis + ", " + scales.length + " ch]"
        : "[s=" + scales[0] + (kind == Kind.TWIN ? ", s_neg=" + scales[1] : "") + ", z=" + zeroPoints[0] + "]");
  }
}
