package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
  void upperFactorInvertsTheDampedHessian() {
    Case c = Case.random(4, 2, 20, 50, 8);
    int n = c.in();
    double[] h = c.gram();
    double mean = 0;
    for (int i = 0; i < n; i++) {
      mean += h[i * n + i] / n;
    }
    double[] u = Gptq.upperCholeskyOfInverse(h, n);
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < i; j++) {
        assertEquals(0, u[i * n + j], "upper triangular");
      }
      assertTrue(u[i * n + i] > 0);
    }
    // U^T U (H + damping I) = I
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double v = 0;
        for (int k = 0; k < n; k++) {
          double inv = 0;
          for (int m = 0; m < n; m++) {
            inv += u[m * n + i] * u[m * n + k];
          }
          v += inv * (h[k * n + j] + (k == j ? Gptq.DAMPING * mean : 0));
        }
        assertEquals(i == j ? 1 : 0, v, 1e-8, "(" + i + ", " + j + ")");
      }
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
