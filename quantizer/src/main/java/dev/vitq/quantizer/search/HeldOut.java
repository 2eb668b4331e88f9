package dev.vitq.quantizer.search;

import dev.vitq.quantizer.Evaluation;

/**
 * How a quantized model's outputs on held-out images are scored against the float model's: the share of images
 * whose top-1 class agrees, for a classifier; the mean cosine similarity of each image's output, for an embedding
 * model (whose arg-max means nothing).
 */
final class HeldOut {
  private HeldOut() {}

  /** The score of {@code outputs} against {@code reference}, both flattened per image in image order. */
  static double score(boolean classifier, float[] outputs, float[] reference, int images) {
    if (outputs.length != reference.length || images <= 0) {
      throw new IllegalArgumentException("Outputs over different or no images");
    }
    int per = outputs.length / images;
    double sum = 0;
    for (int i = 0; i < images; i++) {
      if (classifier) {
        sum += Evaluation.argmax(outputs, i * per, per) == Evaluation.argmax(reference, i * per, per) ? 1 : 0;
      } else {
        sum += Evaluation.cosine(outputs, i * per, reference, i * per, per);
      }
    }
    return sum / images;
  }
}
