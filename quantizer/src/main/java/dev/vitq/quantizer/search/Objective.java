package dev.vitq.quantizer.search;

import java.util.Locale;

/**
 * A loss between the quantized model's outputs and the float model's on the same batch, lower is better. Outputs are
 * row-major [images, width].
 */
public enum Objective {
  /**
   * InfoNCE (Evol-Q's objective): for each image, cross-entropy of picking its own float output among the batch's
   * float outputs, by cosine similarity over a temperature. It rewards keeping images apart, not only close.
   */
  INFONCE,
  /** Mean squared error between the outputs. */
  MSE,
  /** Kullback-Leibler divergence of the quantized softmax from the float softmax, averaged over images. */
  KL,
  /**
   * InfoNCE on the pooled features the classifier reads instead of its logits: with few classes, most of a batch's
   * logits point the way the positive's do, and the features keep what tells the images apart.
   */
  INFONCE_FEATURES;

  public String cliName() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** Whether the loss reads the classifier's input rather than the model's output. */
  public boolean onFeatures() {
    return this == INFONCE_FEATURES;
  }

  /** The loss of {@code quantized} against {@code reference}, both [images, width]: the mean of {@link #perImage}. */
  public double loss(float[] quantized, float[] reference, int images, double temperature) {
    double sum = 0;
    for (double l : perImage(quantized, reference, images, temperature)) {
      sum += l;
    }
    return sum / images;
  }

  /**
   * Each image's term of the loss: what a paired comparison of two candidates on the same images reads. InfoNCE's
   * term of an image still depends on the batch (its negatives).
   */
  public double[] perImage(float[] quantized, float[] reference, int images, double temperature) {
    if (quantized.length != reference.length || images <= 0 || quantized.length % images != 0) {
      throw new IllegalArgumentException("Outputs of " + quantized.length + " and " + reference.length
          + " values do not split into " + images + " images.");
    }
    int width = quantized.length / images;
    return switch (this) {
      case INFONCE, INFONCE_FEATURES -> infoNce(quantized, reference, images, width, temperature);
      case MSE -> mse(quantized, reference, images, width);
      case KL -> kl(quantized, reference, images, width);
    };
  }

  private static double[] infoNce(float[] q, float[] f, int n, int w, double temperature) {
    double[][] zq = normalized(q, n, w);
    double[][] zf = normalized(f, n, w);
    double[] terms = new double[n];
    double[] logits = new double[n];
    for (int i = 0; i < n; i++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < n; j++) {
        double dot = 0;
        for (int k = 0; k < w; k++) {
          dot += zq[i][k] * zf[j][k];
        }
        logits[j] = dot / temperature;
        max = Math.max(max, logits[j]);
      }
      double sum = 0;
      for (int j = 0; j < n; j++) {
        sum += Math.exp(logits[j] - max);
      }
      terms[i] = max + Math.log(sum) - logits[i];
    }
    return terms;
  }

  private static double[][] normalized(float[] v, int n, int w) {
    double[][] out = new double[n][w];
    for (int i = 0; i < n; i++) {
      double norm = 0;
      for (int k = 0; k < w; k++) {
        norm += (double) v[i * w + k] * v[i * w + k];
      }
      // An all-zero output has no direction; it stays zero and is equally far from every target.
      double inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (int k = 0; k < w; k++) {
        out[i][k] = v[i * w + k] * inv;
      }
    }
    return out;
  }

  private static double[] mse(float[] q, float[] f, int n, int w) {
    double[] terms = new double[n];
    for (int i = 0; i < n; i++) {
      double sum = 0;
      for (int k = i * w; k < (i + 1) * w; k++) {
        double d = q[k] - f[k];
        sum += d * d;
      }
      terms[i] = sum / w;
    }
    return terms;
  }

  private static double[] kl(float[] q, float[] f, int n, int w) {
    double[] terms = new double[n];
    for (int i = 0; i < n; i++) {
      double[] lq = logSoftmax(q, i * w, w);
      double[] lf = logSoftmax(f, i * w, w);
      for (int k = 0; k < w; k++) {
        terms[i] += Math.exp(lf[k]) * (lf[k] - lq[k]);
      }
    }
    return terms;
  }

  private static double[] logSoftmax(float[] v, int off, int w) {
    double max = Double.NEGATIVE_INFINITY;
    for (int k = 0; k < w; k++) {
      max = Math.max(max, v[off + k]);
    }
    double sum = 0;
    for (int k = 0; k < w; k++) {
      sum += Math.exp(v[off + k] - max);
    }
    double log = max + Math.log(sum);
    double[] out = new double[w];
    for (int k = 0; k < w; k++) {
      out[k] = v[off + k] - log;
    }
    return out;
  }
}
