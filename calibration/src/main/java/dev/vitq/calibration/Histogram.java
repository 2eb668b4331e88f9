package dev.vitq.calibration;

import java.util.Arrays;

/**
 * A streaming histogram of one tensor's values with exact minimum and maximum.
 *
 * <p>Bins lie on a fixed grid: their width is a power of two {@code w} and their edges are multiples of {@code w},
 * and {@code w} is the least such width at which {@code bins} bins cover every value seen (but never finer than the
 * float spacing at the largest magnitude seen). So the bins depend only on the values, not on how they were split
 * into calls of {@link #add}: adding a tensor in one call or image by image gives the same counts, which is what lets
 * calibration choose how many images one ONNX Runtime run holds without changing its result. When later values fall
 * outside, the width doubles as often as needed; each new bin is exactly the union of old bins, so counts stay exact at
 * the coarser resolution and memory stays at {@code bins} counters however many values pass. The width is at most
 * {@code 2 (max - min) / (bins - 1)} (or the float spacing, when that is wider), and a quantile is within one width of
 * the exact one. NaN and infinite values are not counted. Not thread-safe; one histogram per tensor.
 */
public final class Histogram {
  private final long[] counts;
  /** log2 of the bin width; meaningful once a value was counted. */
  private int exponent;
  /** Grid index (value / width, rounded down) of the first bin. */
  private long base;
  private double min = Double.POSITIVE_INFINITY;
  private double max = Double.NEGATIVE_INFINITY;
  private long total;

  /** A histogram of {@code bins} bins (at least 2). */
  public Histogram(int bins) {
    if (bins < 2) {
      throw new IllegalArgumentException("Bins must be at least 2, got " + bins);
    }
    counts = new long[bins];
  }

  /** Adds {@code len} values starting at {@code off}. NaN and infinite values are ignored. */
  public void add(float[] values, int off, int len) {
    float bmin = Float.POSITIVE_INFINITY;
    float bmax = Float.NEGATIVE_INFINITY;
    for (int i = off; i < off + len; i++) {
      float v = values[i];
      // Comparisons are false for NaN, so NaN never becomes an extreme.
      if (v < bmin) {
        bmin = v;
      }
      if (v > bmax) {
        bmax = v;
      }
    }
    if (bmin == Float.NEGATIVE_INFINITY || bmax == Float.POSITIVE_INFINITY) {
      bmin = Float.POSITIVE_INFINITY;
      bmax = Float.NEGATIVE_INFINITY;
      for (int i = off; i < off + len; i++) {
        float v = values[i];
        if (Float.isFinite(v)) {
          bmin = Math.min(bmin, v);
          bmax = Math.max(bmax, v);
        }
      }
    }
    if (bmin > bmax) {
      return; // nothing finite
    }
    cover(Math.min(min, bmin), Math.max(max, bmax));
    int n = counts.length;
    double inv = Math.scalb(1.0, -exponent);
    long b0 = base;
    long added = 0;
    for (int i = off; i < off + len; i++) {
      float v = values[i];
      if (Math.abs(v) <= Float.MAX_VALUE) {
        // v * 2^-exponent is exact (a power-of-two scaling), so the bin is exactly floor(v / w) on the grid.
        counts[(int) ((long) Math.floor(v * inv) - b0)]++;
        added++;
      }
    }
    total += added;
  }

  /** Adds every value of the array. */
  public void add(float[] values) {
    add(values, 0, values.length);
  }

  /** Moves to the grid of the range {@code [lo, hi]}, merging bins when it is coarser. */
  private void cover(double lo, double hi) {
    int e = exponentFor(lo, hi, counts.length);
    long b = (long) Math.floor(Math.scalb(lo, -e));
    if (total == 0) {
      exponent = e;
      base = b;
    } else if (e != exponent || b != base) {
      long[] old = counts.clone();
      Arrays.fill(counts, 0);
      int shift = e - exponent;
      for (int i = 0; i < old.length; i++) {
        if (old[i] != 0) {
          long index = base + i;
          // Floor division by 2^shift; every old bin lies inside exactly one new bin.
          long merged = shift >= 63 ? (index < 0 ? -1 : 0) : index >> shift;
          counts[(int) (merged - b)] += old[i];
        }
      }
      exponent = e;
      base = b;
    }
    min = lo;
    max = hi;
  }

  /**
   * The least power-of-two width exponent at which {@code bins} grid-aligned bins hold {@code [lo, hi]}, but no finer
   * than the float spacing at the larger magnitude (finer bins would stay empty, and the bin indices stay small).
   * It never decreases as the range widens, so the grids of successive calls nest.
   */
  static int exponentFor(double lo, double hi, int bins) {
    double magnitude = Math.max(Math.abs(lo), Math.abs(hi));
    int floor = Math.getExponent((double) Math.ulp((float) magnitude));
    int e = Math.max(floor, Math.getExponent((hi - lo) / bins) - 1);
    while (Math.floor(Math.scalb(hi, -e)) - Math.floor(Math.scalb(lo, -e)) >= bins) {
      e++;
    }
    return e;
  }

  public long total() {
    return total;
  }

  /** The smallest value seen. */
  public double min() {
    return min;
  }

  /** The largest value seen. */
  public double max() {
    return max;
  }

  public int bins() {
    return counts.length;
  }

  /** Lower edge of the histogram's range. */
  public double lo() {
    return total == 0 ? 0 : Math.scalb((double) base, exponent);
  }

  /** Upper edge of the histogram's range. */
  public double hi() {
    return total == 0 ? 0 : Math.scalb((double) (base + counts.length), exponent);
  }

  /** Width of one bin. */
  public double binWidth() {
    return total == 0 ? 0 : Math.scalb(1.0, exponent);
  }

  /** A copy of the bin counts. */
  public long[] counts() {
    return counts.clone();
  }

  /**
   * The value below which a share {@code q} (0..1) of the values lie, interpolated within its bin and kept within
   * the exact minimum and maximum: within one {@link #binWidth} of the exact order statistic.
   */
  public double quantile(double q) {
    if (total == 0) {
      throw new IllegalStateException("Empty histogram");
    }
    if (q <= 0) {
      return min;
    }
    if (q >= 1) {
      return max;
    }
    double target = q * total;
    double lo = lo();
    double width = binWidth();
    long cum = 0;
    for (int b = 0; b < counts.length; b++) {
      if (cum + counts[b] >= target) {
        double frac = counts[b] == 0 ? 0 : (target - cum) / counts[b];
        return Math.max(min, Math.min(max, lo + (b + frac) * width));
      }
      cum += counts[b];
    }
    return max;
  }

  @Override
  public String toString() {
    return "Histogram[" + total + " values in [" + min + ", " + max + "], " + counts.length + " bins over [" + lo()
        + ", " + hi() + ")" + (total == 0 ? "" : ", nonzero " + Arrays.stream(counts).filter(c -> c > 0).count())
        + "]";
  }
}
