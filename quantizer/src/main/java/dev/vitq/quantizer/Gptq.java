package dev.vitq.quantizer;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * GPTQ's error-compensating rounding of one linear layer (Frantar et al. 2022, after Optimal Brain Quantization), in
 * closed form: input features are quantized one at a time with the layer's fixed per-output-channel scales, and each
 * one's rounding error is spread over the features not yet quantized so that the layer's output on the calibration
 * inputs, {@code X W}, changes as little as possible. The weight of that trade is the inverse of the damped Hessian
 * {@code H = X^T X}, applied through a triangular factor of {@code H} itself (no inverse is formed).
 *
 * <p>Weights here are rows of output channels, {@code w[o * in + i]}, the transpose of a MatMul's [in, out]. Every
 * value is computed by one thread in a fixed order, so the result depends neither on the machine's threads nor on
 * their scheduling. For ViT-Base's fc2 (3072 inputs) the loops are written so the JIT can vectorise them and the rows
 * they reuse stay in cache: the textbook forms took minutes a layer there.
 */
final class Gptq {
  /** Share of the mean Hessian diagonal added to the diagonal: GPTQ's default, keeping the inverse well-conditioned. */
  static final double DAMPING = 0.01;
  /** How many times the damping grows tenfold when rounding errors leave the damped Hessian not positive definite. */
  private static final int RETRIES = 4;
  /** Output channels one thread rounds together: their errors are read once per feature for all of them. */
  private static final int ROWS = 32;
  /** Rows of the Cholesky factor finished before the rows below are updated with them. */
  private static final int PANEL = 64;
  /**
   * Rows of the factor applied together to a row below a panel ({@link #upperCholesky}): the row is loaded and stored
   * once for four, which cut the factor's share of ViT-Base's CPU time by about a quarter (the values are the same to
   * the bit).
   */
  private static final int FUSED = 4;

  private Gptq() {}

  /**
   * The weights rounded onto {@code q}'s grid, channel {@code o} with {@code q}'s scale {@code o}: every value is a
   * level times its scale.
   *
   * @param w [out, in], row-major
   * @param out output channels
   * @param in input features
   * @param q a uniform quantizer with {@code out} channels
   * @param gram {@code X^T X}, [in, in] (not changed; a longer array is read for its first {@code in * in} values)
   * @param actOrder whether to quantize the features of largest Hessian diagonal first (GPTQ's act-order)
   */
  static float[] quantize(float[] w, int out, int in, Quantizer q, double[] gram, boolean actOrder) {
    return quantize(w, out, in, q, gram, actOrder, null);
  }

  /**
   * {@link #quantize(float[], int, int, Quantizer, double[], boolean)} with {@code work} (at least {@code in * in}
   * values, or null) holding the factor: ViT-Base's fc2 needs 75 MB, which a new array per layer made garbage.
   */
  static float[] quantize(float[] w, int out, int in, Quantizer q, double[] gram, boolean actOrder, double[] work) {
    if (w.length != out * in || gram.length < in * in || q.scales().length != out) {
      throw new IllegalArgumentException("Weights [" + out + ", " + in + "], Hessian of " + gram.length
          + " values and " + q.scales().length + " scales do not fit together");
    }
    int[] order = order(gram, in, actOrder);
    double[] f = factor(gram, order, in, work);
    float[] result = new float[out * in];
    // Output channels are independent given the factor; each block of them runs on one thread in a fixed order.
    IntStream.range(0, (out + ROWS - 1) / ROWS).parallel()
        .forEach(k -> rows(w, in, q, f, order, k * ROWS, Math.min(out, (k + 1) * ROWS), result));
    return result;
  }

  /**
   * Channels {@code from..to} rounded feature by feature: feature {@code a} (in quantization order) takes its weight
   * plus the earlier features' rounding errors {@code d_c = w_c - q_c} carried through the factor, {@code w_a +
   * sum_{c<a} W_ac d_c / W_aa}. With {@code H = W^T W} this is GPTQ's update {@code -d_c U_cb / U_cc} summed over
   * {@code c} ({@code U = W^-T} is the upper Cholesky factor of {@code H^-1}), without inverting anything.
   */
  private static void rows(float[] w, int in, Quantizer q, double[] f, int[] order, int from, int to,
      float[] result) {
    int r = to - from;
    // errors[c * r + k]: the rounding error of feature c of channel from + k, so the sum over c runs across channels.
    double[] errors = new double[in * r];
    double[] carried = new double[r];
    for (int a = 0; a < in; a++) {
      Arrays.fill(carried, 0);
      int row = a * in;
      for (int c = 0; c < a; c++) {
        double fc = f[row + c];
        if (fc != 0) {
          int e = c * r;
          for (int k = 0; k < r; k++) {
            carried[k] += fc * errors[e + k];
          }
        }
      }
      double diag = f[row + a];
      int feature = order[a];
      for (int k = 0; k < r; k++) {
        int o = from + k;
        float weight = w[o * in + feature];
        double v = weight + carried[k] / diag;
        float rounded = q.dequantize(q.quantize((float) v, o), o);
        result[o * in + feature] = rounded;
        errors[a * r + k] = (double) weight - rounded;
      }
    }
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
   * The lower triangular {@code W} with {@code W^T W = P (H + damping) P^T}, {@code P} the feature order, row-major:
   * features no input ever reached get a unit diagonal (they are then rounded to nearest), and {@link #DAMPING} of
   * the mean diagonal is added to all.
   */
  static double[] factor(double[] gram, int[] order, int n) {
    return factor(gram, order, n, null);
  }

  /** {@link #factor(double[], int[], int)} in {@code work} when it holds {@code n * n} values or more. */
  static double[] factor(double[] gram, int[] order, int n, double[] work) {
    double mean = 0;
    for (int i = 0; i < n; i++) {
      mean += gram[i * n + i];
    }
    mean /= n;
    double damp = DAMPING * (mean > 0 ? mean : 1);
    for (int attempt = 0; ; attempt++) {
      // Reversed: J A J = V^T V with the upper V gives A = (J V J)^T (J V J), and J V J is V read backwards.
      double[] a = work != null && work.length >= n * n ? work : new double[n * n];
      Arrays.fill(a, 0, n * n, 0);
      for (int i = 0; i < n; i++) {
        int fi = order[n - 1 - i];
        for (int j = i + 1; j < n; j++) {
          a[i * n + j] = gram[fi * n + order[n - 1 - j]];
        }
        double diag = gram[fi * n + fi];
        a[i * n + i] = (diag > 0 ? diag : 1) + damp;
      }
      if (upperCholesky(a, n)) {
        for (int i = 0, j = n * n - 1; i < j; i++, j--) {
          double t = a[i];
          a[i] = a[j];
          a[j] = t;
        }
        return a;
      }
      if (attempt == RETRIES) {
        throw new IllegalStateException("The damped Hessian is not positive definite even with damping " + damp);
      }
      damp *= 10;
    }
  }

  /** {@link #factor} in the stored feature order. */
  static double[] factor(double[] gram, int n) {
    return factor(gram, order(gram, n, false), n);
  }

  /**
   * Replaces the upper triangle of a symmetric matrix (row-major; the lower triangle is not read) by its upper
   * Cholesky factor {@code V}, {@code A = V^T V}; false if it is not (numerically) positive definite. Right-looking,
   * {@link #PANEL} rows at a time, so the rows a panel updates stay in cache; every element is updated by the rows
   * above it in order, whatever the threads.
   */
  static boolean upperCholesky(double[] a, int n) {
    for (int k0 = 0; k0 < n; k0 += PANEL) {
      int k1 = Math.min(n, k0 + PANEL);
      for (int k = k0; k < k1; k++) {
        int rk = k * n;
        double d = a[rk + k];
        if (!(d > 0)) {
          return false;
        }
        d = Math.sqrt(d);
        a[rk + k] = d;
        for (int j = k + 1; j < n; j++) {
          a[rk + j] /= d;
        }
        for (int i = k + 1; i < k1; i++) {
          subtractRow(a, n, k, i);
        }
      }
      int from = k0;
      IntStream.range(k1, n).parallel().forEach(i -> {
        int k = from;
        for (; k + FUSED <= k1; k += FUSED) {
          subtractRows(a, n, k, i);
        }
        for (; k < k1; k++) {
          subtractRow(a, n, k, i);
        }
      });
    }
    return true;
  }

  /**
   * {@link #subtractRow} for rows {@code k..k+3} in turn, in one pass over row {@code i}: every element takes the same
   * four subtractions in the same order, so the result is the same to the bit. Falls back to one row at a time when a
   * coefficient is zero, which that form skips.
   */
  private static void subtractRows(double[] a, int n, int k, int i) {
    int r0 = k * n;
    int r1 = r0 + n;
    int r2 = r1 + n;
    int r3 = r2 + n;
    double c0 = a[r0 + i];
    double c1 = a[r1 + i];
    double c2 = a[r2 + i];
    double c3 = a[r3 + i];
    if (c0 == 0 || c1 == 0 || c2 == 0 || c3 == 0) {
      for (int m = k; m < k + FUSED; m++) {
        subtractRow(a, n, m, i);
      }
      return;
    }
    int ri = i * n;
    for (int j = i; j < n; j++) {
      double x = a[ri + j];
      x -= c0 * a[r0 + j];
      x -= c1 * a[r1 + j];
      x -= c2 * a[r2 + j];
      x -= c3 * a[r3 + j];
      a[ri + j] = x;
    }
  }

  /** {@code A[i][i..] -= V[k][i] V[k][i..]}. */
  private static void subtractRow(double[] a, int n, int k, int i) {
    int rk = k * n;
    int ri = i * n;
    double c = a[rk + i];
    if (c != 0) {
      for (int j = i; j < n; j++) {
        a[ri + j] -= c * a[rk + j];
      }
    }
  }
}
