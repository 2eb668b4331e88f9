package dev.vitq.quantizer;

import java.util.Arrays;
import java.util.Locale;

/**
 * A bit-width scheme: weights per output channel, symmetric; activations per tensor, asymmetric. The patch
 * embedding and the head keep 8-bit weights in every scheme (they hold 0.2% of the weights and most of the
 * sensitivity); softmax outputs use a log2 quantizer below 8 bits.
 */
public enum Scheme {
  W8A8(8, 8),
  W6A6(6, 6),
  W4A8(4, 8),
  W4A4(4, 4),
  /** 8-bit weights, 16-bit (uint16) activations: the precision Qualcomm's HTP runs transformers at. */
  W8A16(8, 16),
  /** 4-bit weights, 16-bit (uint16) activations. */
  W4A16(4, 16),
  /**
   * Bits chosen per weight and per block by the mixed-precision search ({@code --scheme auto}); every plan entry's
   * quantizer records its own bits. Its {@link #weightBits()} and {@link #activationBits()} are the widest used.
   * Calibration never runs with it: the search calibrates the uniform schemes and mixes their entries.
   */
  AUTO(8, 8),
  /**
   * Int8 weights (per output channel, symmetric) and activations quantized at run time by the kernel, as ONNX
   * Runtime's {@code quantize_dynamic} does: no calibration images and no plan ({@code --scheme w8-dynamic}).
   */
  W8_DYNAMIC(8, 8),
  /** Float16 weights and compute behind float32 inputs and outputs, for GPU and NPU providers; no calibration. */
  FP16(16, 16);

  private final int weightBits;
  private final int activationBits;

  Scheme(int weightBits, int activationBits) {
    this.weightBits = weightBits;
    this.activationBits = activationBits;
  }

  /** Whether this is one bit width for every block, as calibration needs (all but {@link #AUTO}). */
  public boolean uniform() {
    return this != AUTO;
  }

  /**
   * Whether the scheme is written without calibration images and without a plan: {@link #W8_DYNAMIC} (activation
   * ranges found at run time) and {@link #FP16} (no ranges at all).
   */
  public boolean dataFree() {
    return this == W8_DYNAMIC || this == FP16;
  }

  /** Bits of the transformer blocks' weights. */
  public int weightBits() {
    return weightBits;
  }

  /** Bits of every quantized activation. */
  public int activationBits() {
    return activationBits;
  }

  /** The lower-case name used on the command line and in plans. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /**
   * The scheme of a command-line name.
   *
   * @throws IllegalArgumentException listing the known schemes
   */
  public static Scheme ofCliName(String name) {
    for (Scheme s : values()) {
      if (s.cliName().equals(name.toLowerCase(Locale.ROOT))) {
        return s;
      }
    }
    throw new IllegalArgumentException("Unknown scheme '" + name + "', expected one of "
        + Arrays.stream(values()).map(Scheme::cliName).toList() + ".");
  }
}
