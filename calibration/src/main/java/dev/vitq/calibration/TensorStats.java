package dev.vitq.calibration;

import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * What calibration learns about one activation tensor: a histogram of its values (with exact extremes) and the
 * least, greatest and mean value of each channel of its last axis. The result does not depend on how the values are
 * split into calls of {@link #add}, only on their order.
 */
public final class TensorStats {
  /** Histogram resolution: fine enough for percentile and MSE clipping at 8 bits. */
  public static final int BINS = 4096;
  /** Values folded per step: a cache-sized window read from the tensor, so no copy of a whole tensor is made. */
  private static final int WINDOW = 1 << 14;

  private final String name;
  private final Histogram histogram = new Histogram(BINS);
  /** Where values are folded from, kept between calls: one tensor is folded by one thread at a time. */
  private float[] window;
  private double[] channelSums;
  private float[] channelMin;
  private float[] channelMax;
  private long rows;

  public TensorStats(String name) {
    this.name = name;
  }

  public String name() {
    return name;
  }

  /** Adds a batch of the tensor, whose last axis has {@code channels} entries. */
  public void add(float[] values, int channels) {
    add(FloatBuffer.wrap(values), channels);
  }

  /**
   * Adds a batch of the tensor from the buffer's position to its limit (the buffer itself is not moved); its last
   * axis has {@code channels} entries.
   */
  public void add(FloatBuffer values, int channels) {
    int length = values.remaining();
    if (channelSums == null) {
      channelSums = new double[channels];
      channelMin = new float[channels];
      channelMax = new float[channels];
      Arrays.fill(channelMin, Float.POSITIVE_INFINITY);
      Arrays.fill(channelMax, Float.NEGATIVE_INFINITY);
    }
    if (channels != channelSums.length || length % channels != 0) {
      throw new IllegalArgumentException("Tensor '" + name + "' changed its last axis from " + channelSums.length
          + " to " + channels);
    }
    if (window == null) {
      window = new float[Math.max(1, WINDOW / channels) * channels];
    }
    int from = values.position();
    for (int done = 0; done < length; done += window.length) {
      int n = Math.min(window.length, length - done);
      values.get(from + done, window, 0, n);
      histogram.add(window, 0, n);
      for (int i = 0; i < n; i += channels) {
        for (int c = 0; c < channels; c++) {
          float v = window[i + c];
          channelSums[c] += v;
          if (v < channelMin[c]) {
            channelMin[c] = v;
          }
          if (v > channelMax[c]) {
            channelMax[c] = v;
          }
        }
      }
    }
    rows += length / channels;
  }

  public Histogram histogram() {
    return histogram;
  }

  /** The least value of each channel of the last axis. */
  public float[] channelMin() {
    return channelMin.clone();
  }

  /** The greatest value of each channel of the last axis. */
  public float[] channelMax() {
    return channelMax.clone();
  }

  /** The mean of each channel of the last axis. */
  public double[] channelMeans() {
    double[] m = new double[channelSums.length];
    for (int c = 0; c < m.length; c++) {
      m[c] = channelSums[c] / rows;
    }
    return m;
  }

  /** Values seen per channel. */
  public long rows() {
    return rows;
  }
}
