package dev.vitq.quantizer;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import java.util.List;
import java.util.Map;

/** Top-1 accuracy and agreement with a reference, measured by running a model in ONNX Runtime. */
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
}
