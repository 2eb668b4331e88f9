package dev.vitq.calibration;

import java.util.Arrays;

/**
 * A streaming histogram of one tensor's values with exact minimum and maximum.
 *
 * <p>The range starts at the first batch's extremes and, when later values fall outside, doubles its width and
 * merges bins in pairs, so counts stay exact at a coarser resolution and memory stays at {@code bins} counters
 * however many values pass. Not thread-safe; one histogram per tensor.
 */
public final class Histogram {
  private final long[] counts;
  private double lo;
  private double hi;
  private double min = Double.POSITIVE_INFINITY;
  private double max = Double.NEGATIVE_INFINITY;
  private long total;

  /** A histogram of {@code bins} bins (even, at least 2). */
  public Histogram(int bins) {
    if (bins < 2 || bins % 2 != 0) {
      throw new IllegalArgumentException("Bins must be even and at least 2, got " + bins);
    }
    counts = new long[bins];
  }

  /** Adds {@code len} values starting at {@code off}. NaN values are ignored. */
  public void add(float[] values, int off, int len) {
    float bmin = Float.POSITIVE_INFINITY;
    float bmax = Float.NEGATIVE_INFINITY;
    for (int i = off; i < off + len; i++) {
      float v = values[i];
      if (v < bmin) {
        bmin = v;
      }
      if (v > bmax) {
        bmax = v;
      }
    }
    if (bmin > bmax) {
      return; // empty or all NaN
    }
    if (total == 0) {
      lo = bmin;
      hi = bmax > bmin ? bmax + (bmax - bmin) * 1e-6 : bmin + Math.max(Math.abs(bmin) * 1e-6, 1e-12);
    }
    while (bmin < lo || bmax >= hi) {
      grow(bmin < lo);
    }
    min = Math.min(min, bmin);
    max = Math.max(max, bmax);
    int n = counts.length;
    double inv = n / (hi - lo);
    double base = lo;
    for (int i = off; i < off + len; i++) {
      float v = values[i];
      if (v == v) {
        int b = (int) ((v - base) * inv);
        counts[b < 0 ? 0 : b >= n ? n - 1 : b]++;
        total++;
      }
    }
  }

  /** Adds every value of the array. */
  public void add(float[] values) {
    add(values, 0, values.length);
  }

  /** Doubles the range towards the low side (or the high side), merging bins in pairs. */
  private void grow(boolean towardsLow) {
    int n = counts.length;
    long[] merged = new long[n];
    int offset = towardsLow ? n / 2 : 0;
    for (int j = 0; j < n / 2; j++) {
      merged[offset + j] = counts[2 * j] + counts[2 * j + 1];
    }
    System.arraycopy(merged, 0, counts, 0, n);
    double width = hi - lo;
    if (towardsLow) {
      lo -= width;
    } else {
      hi += width;
    }
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
    return lo;
  }

  /** Upper edge of the histogram's range. */
  public double hi() {
    return hi;
  }

  /** A copy of the bin counts. */
  public long[] counts() {
    return counts.clone();
  }

  /**
   * The value below which a share {@code q} (0..1) of the values lie, interpolated within its bin and kept within
   * the exact minimum and maximum.
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
    double width = (hi - lo) / counts.length;
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
    return "Histogram[" + total + " values in [" + min + ", " + max + "], " + counts.length + " bins over [" + lo + ", "
        + hi + ")" + (total == 0 ? "" : ", nonzero " + Arrays.stream(counts).filter(c -> c > 0).count()) + "]";
  }
}
