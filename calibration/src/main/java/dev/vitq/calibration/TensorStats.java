package dev.vitq.calibration;

/**
 * What calibration learns about one activation tensor: a histogram of its values (with exact extremes) and the mean
 * of each channel of its last axis.
 */
public final class TensorStats {
  /** Histogram resolution: fine enough for percentile and MSE clipping at 8 bits. */
  public static final int BINS = 4096;

  private final String name;
  private final Histogram histogram = new Histogram(BINS);
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
    histogram.add(values);
    if (channelSums == null) {
      channelSums = new double[channels];
      channelMin = new float[channels];
      channelMax = new float[channels];
      java.util.Arrays.fill(channelMin, Float.POSITIVE_INFINITY);
      java.util.Arrays.fill(channelMax, Float.NEGATIVE_INFINITY);
    }
    if (channels != channelSums.length || values.length % channels != 0) {
      throw new IllegalArgumentException("Tensor '" + name + "' changed its last axis from " + channelSums.length
          + " to " + channels);
    }
    for (int i = 0; i < values.length; i += channels) {
      for (int c = 0; c < channels; c++) {
        float v = values[i + c];
        channelSums[c] += v;
        channelMin[c] = Math.min(channelMin[c], v);
        channelMax[c] = Math.max(channelMax[c], v);
      }
    }
    rows += values.length / channels;
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
}
