package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** GPTQ's rounding against round-to-nearest on layers with known inputs. */
class GptqTest {
  /** A layer: weights [out, in], inputs [rows, in] with correlated features (as a post-norm activation has). */
  record Case(float[] w, int out, int in, double[][] x, Quantizer q) {
    static Case random(long seed, int out, int in, int rows, int bits) {
      Random rng = new Random(seed);
      float[] w = new float[out * in];
      for (int k = 0; k < w.length; k++) {
        w[k] = (float) (0.05 * rng.nextGaussian());
      }
      // Features mix a few shared factors, with a wide spread of energies.
      int factors = 4;
      double[][] mix = new double[factors][in];
      for (double[] m : mix) {
        for (int i = 0; i < in; i++) {
          m[i] = rng.nextGaussian();
        }
      }
      double[] energy = new double[in];
      for (int i = 0; i < in; i++) {
        energy[i] = Math.exp(rng.nextGaussian());
      }
      double[][] x = new double[rows][in];
      for (double[] row : x) {
        double[] f = new double[factors];
        for (int k = 0; k < factors; k++) {
          f[k] = rng.nextGaussian();
        }
        for (int i = 0; i < in; i++) {
          double v = 0.3 * rng.nextGaussian();
          for (int k = 0; k < factors; k++) {
            v += f[k] * mix[k][i];
          }
          row[i] = (float) (energy[i] * v + 0.5);
        }
      }
      float[] scales = new float[out];
      for (int o = 0; o < out; o++) {
        float max = 0;
        for (int i = 0; i < in; i++) {
          max = Math.max(max, Math.abs(w[o * in + i]));
        }
        scales[o] = max / Quantizer.qmax(bits, true);
      }
      return new Case(w, out, in, x, Quantizer.symmetric(bits, 0, scales));
    }

    double[] gram() {
      double[] g = new double[in * in];
      for (double[] row : x) {
        for (int i = 0; i < in; i++) {
          for (int j = 0; j < in; j++) {
            g[i * in + j] += row[i] * row[j];
          }
        }
      }
      return g;
    }

    float[] nearest() {
      float[] r = new float[w.length];
      for (int k = 0; k < w.length; k++) {
        r[k] = q.fakeQuant(w[k], k / in);
      }
      return r;
    }

    /** {@code ||X W^T - X Wq^T||^2} over the inputs. */
    double outputError(float[] wq) {
      double sum = 0;
      for (double[] row : x) {
        for (int o = 0; o < out; o++) {
          double d = 0;
          for (int i = 0; i < in; i++) {
            d += row[i] * ((double) w[o * in + i] - wq[o * in + i]);
          }
          sum += d * d;
        }
      }
      return sum;
    }
  }

  @Test
  void lowersTheLayerOutputErrorBelowRoundToNearest() {
    Case c = Case.random(1, 16, 48, 400, 4);
    double rtn = c.outputError(c.nearest());
    for (boolean actOrder : new boolean[] {false, true}) {
      double gptq = c.outputError(Gptq.quantize(c.w(), c.out(), c.in(), c.q(), c.gram(), actOrder));
      assertTrue(gptq < 0.8 * rtn, "act-order " + actOrder + ": GPTQ " + gptq + " against nearest " + rtn);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {4, 6, 8})
  void neverWorseThanRoundToNearestAcrossSeeds(int bits) {
    for (long seed = 0; seed < 20; seed++) {
      Case c = Case.random(100 + seed, 8, 24, 200, bits);
      double rtn = c.outputError(c.nearest());
      double gptq = c.outputError(Gptq.quantize(c.w(), c.out(), c.in(), c.q(), c.gram(), true));
      assertTrue(gptq <= rtn * 1.001, "seed " + seed + ", " + bits + " bits: GPTQ " + gptq + " against " + rtn);
    }
  }

  @Test
  void resultLiesOnTheGridOfTheGivenScales() {
    Case c = Case.random(2, 12, 40, 300, 4);
    float[] q = Gptq.quantize(c.w(), c.out(), c.in(), c.q(), c.gram(), true);
    for (int k = 0; k < q.length; k++) {
      int o = k / c.in();
      int level = c.q().quantize(q[k], o);
      assertTrue(level >= c.q().qmin() && level <= c.q().qmax(), "narrow range");
      assertEquals(c.q().dequantize(level, o), q[k], 0f, "value " + k + " is a level times its scale");
    }
  }

  @Test
  void anIdentityHessianIsRoundToNearest() {
    Case c = Case.random(3, 10, 30, 10, 4);
    double[] identity = new double[c.in() * c.in()];
    for (int i = 0; i < c.in(); i++) {
      identity[i * c.in() + i] = 1;
    }
    assertArrayEquals(c.nearest(), Gptq.quantize(c.w(), c.out(), c.in(), c.q(), identity, false));
    assertArrayEquals(c.nearest(), Gptq.quantize(c.w(), c.out(), c.in(), c.q(), identity, true));
  }

  @Test
  void lowerFactorReproducesTheDampedHessianInEitherOrder() {
    Case c = Case.random(4, 2, 20, 50, 8);
    int n = c.in();
    double[] h = c.gram();
    double mean = 0;
    for (int i = 0; i < n; i++) {
      mean += h[i * n + i] / n;
    }
    int[] reversed = new int[n];
    for (int i = 0; i < n; i++) {
      reversed[i] = n - 1 - i;
    }
    for (int[] order : List.of(java.util.stream.IntStream.range(0, n).toArray(), reversed)) {
      double[] w = Gptq.factor(h, order, n);
      for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
          assertEquals(0, w[i * n + j], "lower triangular");
        }
        assertTrue(w[i * n + i] > 0);
      }
      // W^T W = P (H + damping I) P^T
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
          double v = 0;
          for (int k = 0; k < n; k++) {
            v += w[k * n + i] * w[k * n + j];
          }
          double expected = h[order[i] * n + order[j]] + (i == j ? Gptq.DAMPING * mean : 0);
          assertEquals(expected, v, 1e-9 * (1 + Math.abs(expected)), "(" + i + ", " + j + ")");
        }
      }
    }
  }

  @Test
  void choleskyPanelsMatchTheUnblockedFactorExactly() {
    // More rows than one panel, so the trailing update runs in parallel: the result must not depend on it.
    int n = 150;
    java.util.Random rng = new java.util.Random(9);
    double[] x = new double[3 * n * n];
    for (int i = 0; i < x.length; i++) {
      x[i] = rng.nextGaussian();
    }
    double[] a = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double v = 0;
        for (int r = 0; r < 3 * n; r++) {
          v += x[r * n + i] * x[r * n + j];
        }
        a[i * n + j] = v;
      }
    }
    // A feature independent of the others leaves zero coefficients, which the fused rows hand to the one-row form.
    for (int i = 0; i < n; i++) {
      if (i != 100) {
        a[100 * n + i] = 0;
        a[i * n + 100] = 0;
      }
    }
    double[] reference = a.clone();
    // Textbook right-looking form, one row at a time.
    for (int k = 0; k < n; k++) {
      double d = Math.sqrt(reference[k * n + k]);
      reference[k * n + k] = d;
      for (int j = k + 1; j < n; j++) {
        reference[k * n + j] /= d;
      }
      for (int i = k + 1; i < n; i++) {
        double cki = reference[k * n + i];
        if (cki != 0) {
          for (int j = i; j < n; j++) {
            reference[i * n + j] -= cki * reference[k * n + j];
          }
        }
      }
    }
    double[] blocked = a.clone();
    assertTrue(Gptq.upperCholesky(blocked, n));
    for (int i = 0; i < n; i++) {
      for (int j = i; j < n; j++) {
        assertEquals(reference[i * n + j], blocked[i * n + j], 0.0, "(" + i + ", " + j + ")");
      }
    }
    double[] notPositive = a.clone();
    notPositive[5 * n + 5] = -1;
    assertFalse(Gptq.upperCholesky(notPositive, n));
  }

  @Test
  void roundingMatchesOneChannelAtATimeExactly() {
    // 70 channels (not a multiple of a thread's rows) and two dead features, whose zero factor entries are skipped.
    Case c = Case.random(11, 70, 37, 200, 4);
    int in = c.in();
    double[] g = c.gram();
    for (int dead : new int[] {5, 30}) {
      for (int i = 0; i < in; i++) {
        g[dead * in + i] = 0;
        g[i * in + dead] = 0;
      }
    }
    double[] f = Gptq.factor(g, in);
    float[] reference = new float[c.w().length];
    for (int o = 0; o < c.out(); o++) {
      double[] errors = new double[in];
      for (int a = 0; a < in; a++) {
        double carried = 0;
        for (int k = 0; k < a; k++) {
          double fk = f[a * in + k];
          if (fk != 0) {
            carried += fk * errors[k];
          }
        }
        float weight = c.w()[o * in + a];
        float rounded = c.q().dequantize(c.q().quantize((float) (weight + carried / f[a * in + a]), o), o);
        reference[o * in + a] = rounded;
        errors[a] = (double) weight - rounded;
      }
    }
    float[] blocked = Gptq.quantize(c.w(), c.out(), in, c.q(), g, false);
    for (int k = 0; k < reference.length; k++) {
      assertEquals(Float.floatToRawIntBits(reference[k]), Float.floatToRawIntBits(blocked[k]), "value " + k);
    }
  }

  @Test
  void neverSeenFeaturesAreRoundedToNearest() {
    Case c = Case.random(5, 6, 16, 100, 4);
    double[] g = c.gram();
    int dead = 7;
    for (int i = 0; i < c.in(); i++) {
      g[dead * c.in() + i] = 0;
      g[i * c.in() + dead] = 0;
    }
    float[] q = Gptq.quantize(c.w(), c.out(), c.in(), c.q(), g, false);
    float[] nearest = c.nearest();
    for (int o = 0; o < c.out(); o++) {
      assertEquals(nearest[o * c.in() + dead], q[o * c.in() + dead], 0f);
    }
  }
}
