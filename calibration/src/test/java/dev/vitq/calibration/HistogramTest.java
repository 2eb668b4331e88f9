package dev.vitq.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.function.DoubleSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/** The streaming histogram against exact statistics of the same data. */
class HistogramTest {
  private static final int BINS = TensorStats.BINS;

  /** Distributions activations have: bell-shaped, one-sided, heavy-tailed, narrow far from zero, and tiny. */
  static Stream<Arguments> data() {
    return Stream.of(1L, 2L, 3L).flatMap(seed -> Stream.of(
        Arguments.of("gaussian", seed, (Distribution) r -> r::nextGaussian),
        Arguments.of("uniform [0, 1)", seed, (Distribution) r -> r::nextDouble),
        Arguments.of("gelu-like with outliers", seed, (Distribution) r -> () -> {
          double x = r.nextGaussian();
          return r.nextInt(1000) == 0 ? 60 * x : Math.max(-0.17, x);
        }),
        Arguments.of("narrow around 1000", seed, (Distribution) r -> () -> 1000 + 1e-3 * r.nextGaussian()),
        Arguments.of("tiny magnitudes", seed, (Distribution) r -> () -> 1e-30 * r.nextGaussian())));
  }

  interface Distribution {
    DoubleSupplier of(Random r);
  }

  private static float[] sample(Distribution d, long seed, int n) {
    Random r = new Random(seed);
    DoubleSupplier s = d.of(r);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) s.getAsDouble();
    }
    return v;
  }

  /** Adds the values in seeded random pieces, some of them empty. */
  private static Histogram inPieces(float[] values, long seed) {
    Histogram h = new Histogram(BINS);
    Random r = new Random(seed);
    for (int at = 0; at < values.length; ) {
      int len = Math.min(values.length - at, r.nextInt(5000));
      h.add(values, at, len);
      at += len;
    }
    return h;
  }

  @ParameterizedTest(name = "{0}, seed {1}")
  @MethodSource("data")
  void quantilesAreWithinOneBinOfTheExactOrderStatistic(String name, long seed, Distribution d) {
    float[] values = sample(d, seed, 100_000);
    Histogram h = inPieces(values, seed + 100);
    float[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    assertEquals(n, h.total());
    assertEquals(sorted[0], h.min());
    assertEquals(sorted[n - 1], h.max());
    double width = h.binWidth();
    // The grid is the coarsest needed: a power of two at most 2 (max - min) / (bins - 1), or the float spacing.
    assertTrue(width <= Math.max(2 * (h.max() - h.min()) / (BINS - 1), Math.ulp((float) Math.max(Math.abs(h.min()),
        Math.abs(h.max())))), name + ": bin width " + width);
    assertTrue(h.lo() <= h.min() && h.max() < h.hi(), h.toString());
    for (double q : new double[] {1e-5, 1e-4, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1 - 1e-5}) {
      // The order statistic the histogram's bin search lands on: the ceil(q n)-th smallest value.
      int k = (int) Math.max(1, Math.ceil(q * n));
      double exact = sorted[k - 1];
      double got = h.quantile(q);
      assertTrue(Math.abs(got - exact) <= width, name + ": q " + q + " gave " + got + ", exact " + exact
          + ", bin width " + width);
    }
    assertEquals(sorted[0], h.quantile(0));
    assertEquals(sorted[n - 1], h.quantile(1));
  }

  @ParameterizedTest(name = "{0}, seed {1}")
  @MethodSource("data")
  void countsAreExactlyTheValuesOfEachBinWhateverThePieces(String name, long seed, Distribution d) {
    float[] values = sample(d, seed, 50_000);
    Histogram whole = new Histogram(BINS);
    whole.add(values);
    Histogram pieces = inPieces(values, seed + 7);
    Histogram single = new Histogram(BINS);
    for (float v : values) {
      single.add(new float[] {v});
    }
    for (Histogram h : new Histogram[] {pieces, single}) {
      assertArrayEquals(whole.counts(), h.counts(), name);
      assertEquals(whole.lo(), h.lo());
      assertEquals(whole.hi(), h.hi());
      assertEquals(whole.min(), h.min());
      assertEquals(whole.max(), h.max());
      assertEquals(whole.total(), h.total());
    }
    // Each count is the number of values in [lo + b w, lo + (b + 1) w): merging bins as the range grew lost nothing.
    long[] expected = new long[BINS];
    for (float v : values) {
      expected[(int) Math.floor((v - whole.lo()) / whole.binWidth())]++;
    }
    assertArrayEquals(expected, whole.counts(), name);
  }

  @Test
  void aRangeThatGrowsOnBothSidesKeepsEveryValue() {
    Histogram h = new Histogram(8);
    h.add(new float[] {0.5f, 0.75f});
    h.add(new float[] {-100, 3});
    h.add(new float[] {1e6f});
    assertEquals(5, h.total());
    assertEquals(5, Arrays.stream(h.counts()).sum());
    assertEquals(-100, h.min());
    assertEquals(1e6, h.max());
    // 8 bins of a power-of-two width aligned to it must hold -100..1e6: 2^18 (2^17 would need 9).
    assertEquals(1 << 18, h.binWidth());
    assertEquals(-(1 << 18), h.lo());
  }

  @Test
  void nanAndInfinitiesAreNotCounted() {
    Histogram h = new Histogram(16);
    h.add(new float[] {Float.NaN, 1, Float.POSITIVE_INFINITY, -2, Float.NEGATIVE_INFINITY});
    assertEquals(2, h.total());
    assertEquals(-2, h.min());
    assertEquals(1, h.max());
    h.add(new float[] {Float.NaN});
    assertEquals(2, h.total());
  }

  @Test
  void equalValuesGiveOneBinAndExactQuantiles() {
    Histogram h = new Histogram(BINS);
    float[] v = new float[1000];
    Arrays.fill(v, 0.3f);
    h.add(v);
    assertEquals(1000, Arrays.stream(h.counts()).max().orElseThrow());
    assertEquals(0.3f, h.quantile(0.5));
    assertEquals(Math.ulp(0.3f), h.binWidth());
  }

  @Test
  void anEmptyHistogramHasNoQuantile() {
    Histogram h = new Histogram(4);
    h.add(new float[0]);
    h.add(new float[] {Float.NaN});
    assertEquals(0, h.total());
    assertThrows(IllegalStateException.class, () -> h.quantile(0.5));
    assertThrows(IllegalArgumentException.class, () -> new Histogram(1));
  }
}
