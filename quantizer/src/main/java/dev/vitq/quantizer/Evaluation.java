package dev.vitq.quantizer;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import java.util.List;
import java.util.Map;

/**
 * What a model's outputs are worth, measured by running it in ONNX Runtime: a classifier's top-1 accuracy and
 * agreement with a reference; an embedding model's cosine similarity with the reference's outputs, retrieval
 * agreement and nearest-neighbour accuracy.
 */
public final class Evaluation {
  private Evaluation() {}

  /**
   * Predictions of a classifier over a dataset.
   *
   * @param predicted top-1 class per image, in dataset order (unreadable images left out)
   * @param labels true class per image, or -1
   */
  public record Predictions(int[] predicted, int[] labels) {
    /** Share of images whose top-1 class is the label. */
    public double top1() {
      int hits = 0;
      for (int i = 0; i < predicted.length; i++) {
        hits += predicted[i] == labels[i] ? 1 : 0;
      }
      return (double) hits / predicted.length;
    }

    /** Share of images whose top-1 class equals the reference's. */
    public double agreement(Predictions reference) {
      if (reference.predicted.length != predicted.length) {
        throw new IllegalArgumentException("Predictions over different image sets");
      }
      int same = 0;
      for (int i = 0; i < predicted.length; i++) {
        same += predicted[i] == reference.predicted[i] ? 1 : 0;
      }
      return (double) same / predicted.length;
    }
  }

  /**
   * Runs a session over the dataset and takes the arg-max of its first output.
   *
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  public static Predictions predict(InferenceSession session, ImageDataset data, int batchSize, Progress progress)
      throws VitqException {
    String input = session.inputNames().get(0);
    String output = session.outputNames().get(0);
    int[] predicted = new int[data.size()];
    int[] labels = new int[data.size()];
    int[] n = {0};
    data.forEachBatch(batchSize, progress, batch -> {
      Map<String, HostTensor> out = session.run(Map.of(input, HostTensor.ofFloats(batch.shape(), batch.pixels())),
          List.of(output));
      float[] logits = out.get(output).floats();
      int classes = logits.length / batch.count();
      for (int i = 0; i < batch.count(); i++) {
        predicted[n[0]] = argmax(logits, i * classes, classes);
        labels[n[0]] = batch.labels()[i];
        n[0]++;
      }
    });
    return new Predictions(java.util.Arrays.copyOf(predicted, n[0]), java.util.Arrays.copyOf(labels, n[0]));
  }

  /** The index of the largest of {@code len} values from {@code off}; the first on ties. */
  public static int argmax(float[] v, int off, int len) {
    int best = 0;
    for (int i = 1; i < len; i++) {
      if (v[off + i] > v[off + best]) {
        best = i;
      }
    }
    return best;
  }

  /**
   * An embedding model's outputs over a dataset, one vector per image (an output of tokens is reduced to its mean
   * token, so a 5,000-image set of ViT-Base tokens fits in memory).
   *
   * @param vectors the output per image, in dataset order (unreadable images left out)
   * @param labels true class per image, or -1
   */
  public record Embeddings(float[][] vectors, int[] labels) {
    /** The cosine similarity of each image's vector with the reference's, in image order. */
    public double[] cosines(Embeddings reference) {
      sameImages(reference);
      double[] out = new double[vectors.length];
      for (int i = 0; i < vectors.length; i++) {
        out[i] = cosine(vectors[i], reference.vectors[i]);
      }
      return out;
    }

    /**
     * The share of images whose nearest neighbour among the other images (by cosine) is the same under this model
     * as under the reference.
     */
    public double retrievalAgreement(Embeddings reference) {
      sameImages(reference);
      int[] mine = nearestNeighbours();
      int[] theirs = reference.nearestNeighbours();
      int same = 0;
      for (int i = 0; i < mine.length; i++) {
        same += mine[i] == theirs[i] ? 1 : 0;
      }
      return (double) same / mine.length;
    }

    /** The share of labelled images whose nearest other image has their label (leave-one-out 1-NN accuracy). */
    public double nearestNeighbourAccuracy() {
      int[] nn = nearestNeighbours();
      int hits = 0;
      for (int i = 0; i < nn.length; i++) {
        hits += nn[i] >= 0 && labels[nn[i]] == labels[i] ? 1 : 0;
      }
      return (double) hits / nn.length;
    }

    /** Each image's nearest other image by cosine (the first on ties), or -1 when it is the only one. */
    int[] nearestNeighbours() {
      int n = vectors.length;
      float[][] unit = new float[n][];
      for (int i = 0; i < n; i++) {
        unit[i] = unit(vectors[i]);
      }
      int[] best = new int[n];
      java.util.Arrays.fill(best, -1);
      double[] bestSim = new double[n];
      java.util.Arrays.fill(bestSim, Double.NEGATIVE_INFINITY);
      for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
          double s = dot(unit[i], unit[j]);
          if (s > bestSim[i]) {
            bestSim[i] = s;
            best[i] = j;
          }
          if (s > bestSim[j]) {
            bestSim[j] = s;
            best[j] = i;
          }
        }
      }
      return best;
    }

    private void sameImages(Embeddings reference) {
      if (reference.vectors.length != vectors.length) {
        throw new IllegalArgumentException("Embeddings over different image sets");
      }
    }
  }

  /**
   * The {@code q}-quantile of values (nearest rank on the sorted values; 0.01 gives the 1st percentile).
   *
   * @throws IllegalArgumentException if there are no values
   */
  public static double quantile(double[] values, double q) {
    if (values.length == 0) {
      throw new IllegalArgumentException("No values");
    }
    double[] sorted = values.clone();
    java.util.Arrays.sort(sorted);
    int rank = (int) Math.ceil(q * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
  }

  /** The mean of values. */
  public static double mean(double[] values) {
    double sum = 0;
    for (double v : values) {
      sum += v;
    }
    return sum / values.length;
  }

  /**
   * Runs a session over the dataset and keeps its first output per image ({@link Embeddings}).
   *
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  public static Embeddings embed(InferenceSession session, ImageDataset data, int batchSize, Progress progress)
      throws VitqException {
    String input = session.inputNames().get(0);
    String output = session.outputNames().get(0);
    return embed(pixels -> session.run(Map.of(input, pixels), List.of(output)).get(output), data, batchSize,
        progress);
  }

  /** Whatever computes a model's first output from a batch of pixels: one session, or a device and a cloud half. */
  @FunctionalInterface
  public interface Runner {
    /**
     * The output for these pixels [batch, ...].
     *
     * @throws VitqException if ONNX Runtime fails
     */
    HostTensor run(HostTensor pixels) throws VitqException;
  }

  /**
   * {@link #embed(InferenceSession, ImageDataset, int, Progress)} for any way of running the model.
   *
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  public static Embeddings embed(Runner model, ImageDataset data, int batchSize, Progress progress)
      throws VitqException {
    float[][] vectors = new float[data.size()][];
    int[] labels = new int[data.size()];
    int[] n = {0};
    data.forEachBatch(batchSize, progress, batch -> {
      HostTensor out = model.run(HostTensor.ofFloats(batch.shape(), batch.pixels()));
      float[][] perImage = vectors(out.floats(), out.shape(), batch.count());
      for (int i = 0; i < batch.count(); i++) {
        vectors[n[0]] = perImage[i];
        labels[n[0]] = batch.labels()[i];
        n[0]++;
      }
    });
    return new Embeddings(java.util.Arrays.copyOf(vectors, n[0]), java.util.Arrays.copyOf(labels, n[0]));
  }

  /**
   * One vector per image of a batch's output: [batch, tokens, width] becomes the mean token, any other shape the
   * image's whole output.
   */
  public static float[][] vectors(float[] values, long[] shape, int count) {
    int per = values.length / count;
    int width = shape.length == 3 ? (int) shape[2] : per;
    int tokens = per / width;
    float[][] out = new float[count][];
    for (int i = 0; i < count; i++) {
      float[] v = new float[width];
      for (int t = 0; t < tokens; t++) {
        for (int c = 0; c < width; c++) {
          v[c] += values[i * per + t * width + c];
        }
      }
      if (tokens > 1) {
        for (int c = 0; c < width; c++) {
          v[c] /= tokens;
        }
      }
      out[i] = v;
    }
    return out;
  }

  /** The cosine similarity of two vectors; 1 when both are zero, 0 when one is. */
  public static double cosine(float[] a, float[] b) {
    return cosine(a, 0, b, 0, a.length);
  }

  /** The cosine similarity of {@code a[aFrom, aFrom + len)} and {@code b[bFrom, bFrom + len)}. */
  public static double cosine(float[] a, int aFrom, float[] b, int bFrom, int len) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < len; i++) {
      double x = a[aFrom + i];
      double y = b[bFrom + i];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    if (na == 0 || nb == 0) {
      return na == nb ? 1 : 0;
    }
    return dot / Math.sqrt(na * nb);
  }

  private static float[] unit(float[] v) {
    double norm = 0;
    for (float x : v) {
      norm += (double) x * x;
    }
    float[] out = new float[v.length];
    if (norm > 0) {
      float inv = (float) (1 / Math.sqrt(norm));
      for (int i = 0; i < v.length; i++) {
        out[i] = v[i] * inv;
      }
    }
    return out;
  }

  private static double dot(float[] a, float[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }
}
