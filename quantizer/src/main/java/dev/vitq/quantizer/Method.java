package dev.vitq.quantizer;

import java.util.Arrays;
import java.util.Locale;

/**
 * How initial scales are chosen. Activations: the observed range ({@code minmax}), the range holding all but
 * {@value #PERCENTILE_TAIL} of the values at each end ({@code percentile}), or the clipping range with the least
 * expected squared quantization error ({@code mse}). Weights, per channel: their largest magnitude under
 * {@code minmax}, the clipping with least squared error under {@code percentile} and {@code mse}.
 */
public enum Method {
  MINMAX,
  PERCENTILE,
  MSE;

  /** Share of values left outside the range at each end by {@link #PERCENTILE}. */
  public static final double PERCENTILE_TAIL = 1e-5;

  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * The method of a command-line name.
   *
   * @throws IllegalArgumentException listing the known methods
   */
  public static Method ofCliName(String name) {
    for (Method m : values()) {
      if (m.cliName().equals(name.toLowerCase(Locale.ROOT))) {
        return m;
      }
    }
    throw new IllegalArgumentException("Unknown method '" + name + "', expected one of "
        + Arrays.stream(values()).map(Method::cliName).toList() + ".");
  }
}
