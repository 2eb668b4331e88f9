package dev.vitq.quantizer;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's quantizer: uniform (affine) or log2, per tensor or per channel.
 *
 * <p>Uniform: {@code q = clamp(round(x / s) + z, qmin, qmax)}, {@code x' = (q - z) * s}. Symmetric signed
 * quantizers use the narrow range {@code [-(2^(b-1) - 1), 2^(b-1) - 1]} with {@code z = 0}, as int8 weight kernels
 * expect; unsigned ones use {@code [0, 2^b - 1]}.
 *
 * <p>Log2 (for softmax outputs in [0, 1]): {@code q = clamp(round(-log2 x), 0, 2^b - 1)}, {@code x' = 2^-q}, and
 * the top level stands for 0. Log-sqrt(2): the same with half steps, {@code q = clamp(round(-2 log2 x), 0, 2^b - 1)},
 * {@code x' = 2^(-q/2)}: finer where the large probabilities are, coarser in the tail.
 *
 * @param kind uniform or log2
 * @param bits 2 to 8
 * @param signed whether levels go below zero
 * @param axis the channel axis for per-channel quantization, or -1 for per tensor
 * @param scales one scale per channel (one for per tensor); for log2 unused and {1}
 * @param zeroPoints one zero point per channel
 */
public record Quantizer(Kind kind, int bits, boolean signed, int axis, float[] scales, int[] zeroPoints) {
  /** Quantizer families. */
  public enum Kind { UNIFORM, LOG2, LOG_SQRT2 }

  public Quantizer {
    Objects.requireNonNull(kind, "kind");
    if (bits < 2 || bits > 8) {
      throw new IllegalArgumentException("Bits must be 2..8, got " + bits);
    }
    if (scales.length == 0 || scales.length != zeroPoints.length) {
      throw new IllegalArgumentException("Need one scale and zero point per channel");
    }
    if (axis < 0 && scales.length != 1) {
      throw new IllegalArgumentException("A per-tensor quantizer has one scale");
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
    if (!(scale > 1e-12)) {
      scale = 1e-8; // a tensor that is always 0: any scale represents it exactly
    }
    int zero = (int) Math.max(0, Math.min(qmax, Math.round(-lo / scale)));
    return new Quantizer(Kind.UNIFORM, bits, false, -1, new float[] {(float) scale}, new int[] {zero});
  }

  /** A log2 quantizer for values in [0, 1]. */
  public static Quantizer log2(int bits) {
    return new Quantizer(Kind.LOG2, bits, false, -1, new float[] {1f}, new int[] {0});
  }

  /** A log-sqrt(2) quantizer for values in [0, 1]. */
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
    if (kind != Kind.UNIFORM) {
      if (!(x > 0)) {
        return qmax();
      }
      long q = Math.round(-levelsPerOctave() * Math.log(x) / Math.log(2));
      return (int) Math.max(0, Math.min(qmax(), q));
    }
    long q = Math.round(x / scales[c]) + zeroPoints[c];
    return (int) Math.max(qmin(), Math.min(qmax(), q));
  }

  /** The value of level {@code q} in channel {@code c}. */
  public float dequantize(int q, int c) {
    if (kind != Kind.UNIFORM) {
      return q >= qmax() ? 0f : (float) Math.pow(2, -(double) q / levelsPerOctave());
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
        : "[s=" + scales[0] + ", z=" + zeroPoints[0] + "]");
  }
}
