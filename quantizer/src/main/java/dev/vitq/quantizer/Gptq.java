package dev.vitq.quantizer;

import java.util.Arrays;

/**
 * GPTQ's error-compensating rounding of one linear layer (Frantar et al. 2022, after Optimal Brain Quantization), in
 * closed form: input features are quantized one at a time with the layer's fixed per-output-channel scales, and each
 * one's rounding error is spread over the features not yet quantized so that the layer's output on the calibration
 * inputs, {@code X W}, changes as little as possible. The weight of that trade is the inverse of the damped Hessian
 * {@code H = X^T X}, through its upper Cholesky factor.
 *
 * <p>Weights here are rows of output channels, {@code w[o * in + i]}, the transpose of a MatMul's [in, out]. Every
 * loop runs in a fixed order, so the result does not depend on the machine.
 */
final class Gptq {
  /** Share of the mean Hessian diagonal added to the diagonal: GPTQ's default, keeping the inverse well-conditioned. */
  static final double DAMPING = 0.01;
  /** How many times the damping grows tenfold when rounding errors leave the damped Hessian not positive definite. */
  private static final int RETRIES = 4;

  private Gptq() {}

  /**
   * The weights rounded onto {@code q}'s grid, channel {@code o} with {@code q}'s scale {@code o}: every value is a
   * level times its scale.
   *
   * @param w [out, in], row-major
   * @param out output channels
   * @param in input features
   * @param q a uniform quantizer with {@code out} channels
   * @param gram {@code X^T X}, [in, in] (not changed)
   * @param actOrder whether to quantize the features of largest Hessian diagonal first (GPTQ's act-order)
   */
  static float[] quantize(float[] w, int out, int in, Quantizer q, double[] gram, boolean actOrder) {
    if (w.length != out * in || gram.length != in * in || q.scales().length != out) {
      throw new IllegalArgumentException("Weights [" + out + ", " + in + "], Hessian of " + gram.length
          + " values and " + q.scales().length + " scales do not fit together");
    }
    int[] order = order(gram, in, actOrder);
    double[] h = new double[in * in];
    for (int a = 0; a < in; a++) {
      for (int b = 0; b < in; b++) {
        h[a * in + b] = gram[order[a] * in + order[b]];
      }
    }
    double[] u = upperCholeskyOfInverse(h, in);
    double[] rest = new double[out * in];
    for (int o = 0; o < out; o++) {
      for (int a = 0; a < in; a++) {
        rest[o * in + a] = w[o * in + order[a]];
      }
    }
    float[] result = new float[out * in];
    for (int a = 0; a < in; a++) {
      double d = u[a * in + a];
      int feature = order[a];
      for (int o = 0; o < out; o++) {
        int row = o * in;
        double v = rest[row + a];
        float rounded = q.dequantize(q.quantize((float) v, o), o);
        result[row + feature] = rounded;
        double err = (v - rounded) / d;
        if (err != 0) {
          for (int b = a + 1; b < in; b++) {
            rest[row + b] -= err * u[a * in + b];
          }
        }
      }
    }
    return result;
  }

  /** Feature order: as stored, or by decreasing Hessian diagonal (ties by index, so the order is deterministic). */
  private static int[] order(double[] gram, int n, boolean actOrder) {
    Integer[] idx = new Integer[n];
    for (int i = 0; i < n; i++) {
      idx[i] = i;
    }
    if (actOrder) {
      Arrays.sort(idx, (x, y) -> {
        int c = Double.compare(gram[y * n + y], gram[x * n + x]);
        return c != 0 ? c : Integer.compare(x, y);
      });
    }
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = idx[i];
    }
    return out;
  }

  /**
   * The upper triangular {@code U} with {@code U^T U = (H + damping)^-1}: features no input ever reached get a unit
   * diagonal (they are then rounded to nearest), and {@link #DAMPING} of the mean diagonal is added to all.
   */
  static double[] upperCholeskyOfInverse(double[] gram, int n) {
    double mean = 0;
    for (int i = 0; i < n; i++) {
      mean += gram[i * n + i];
    }
    mean /= n;
    double damp = DAMPING * (mean > 0 ? mean : 1);
    for (int attempt = 0; ; attempt++) {
      // Reversed: J H J = L L^T gives H = R R^T with the upper R = J L J, so H^-1 = (R^-1)^T R^-1 and U = J L^-1 J.
      double[] g = new double[n * n];
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
          g[i * n + j] = gram[(n - 1 - i) * n + (n - 1 - j)];
        }
        double diag = gram[(n - 1 - i) * n + (n - 1 - i)];
        g[i * n + i] = (diag > 0 ? diag : 1) + damp;
      }
      double[] l = choleskyLower(g, n);
      if (l != null) {
        double[] inv = invertLower(l, n);
        double[] u = new double[n * n];
        for (int i = 0; i < n; i++) {
          for (int j = i; j < n; j++) {
            u[i * n + j] = inv[(n - 1 - i) * n + (n - 1 - j)];
          }
        }
        return u;
      }
      if (attempt == RETRIES) {
        throw new IllegalStateException("The damped Hessian is not positive definite even with damping " + damp);
      }
      damp *= 10;
    }
  }

  /** The lower Cholesky factor of a symmetric matrix, or null if it is not (numerically) positive definite. */
  static double[] choleskyLower(double[] a, int n) {
    double[] l = new double[n * n];
    for (int i = 0; i < n; i++) {
      int ri = i * n;
      for (int j = 0; j <= i; j++) {
        int rj = j * n;
        double s = a[ri + j];
        for (int k = 0; k < j; k++) {
          s -= l[ri + k] * l[rj + k];
        }
        if (i == j) {
          if (!(s > 0)) {
            return null;
          }
          l[ri + i] = Math.sqrt(s);
        } else {
          l[ri + j] = s / l[rj + j];
        }
      }
    }
    return l;
  }

  /** The inverse of a lower triangular matrix with a positive diagonal, itself lower triangular. */
  static double[] invertLower(double[] l, int n) {
    double[] inv = new double[n * n];
    double[] x = new double[n];
    for (int j = 0; j < n; j++) {
      // Solves L x = e_j; x is zero above j.
      x[j] = 1 / l[j * n + j];
      inv[j * n + j] = x[j];
      for (int i = j + 1; i < n; i++) {
        int ri = i * n;
        double s = 0;
        for (int k = j; k < i; k++) {
          s += l[ri + k] * x[k];
        }
        x[i] = -s / l[ri + i];
        inv[ri + j] = x[i];
      }
    }
    return inv;
  }
}
