package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The embedding measures on vectors whose answers are known by hand. */
class EvaluationTest {
  // Two clusters on the plane: images 0 and 1 near the x axis (label 0), 2 and 3 near the y axis (label 1).
  private static final float[][] FLOAT = {{1, 0.1f}, {1, 0.2f}, {0.1f, 1}, {0.2f, 1}};
  private static final int[] LABELS = {0, 0, 1, 1};

  @Test
  void identicalOutputsHaveCosineOneAndAgreeOnEveryNeighbour() {
    Evaluation.Embeddings ref = new Evaluation.Embeddings(FLOAT, LABELS);
    assertArrayEquals(new double[] {1, 1, 1, 1}, ref.cosines(ref), 1e-12);
    assertEquals(1.0, ref.retrievalAgreement(ref));
    assertEquals(1.0, ref.nearestNeighbourAccuracy());
    assertArrayEquals(new int[] {1, 0, 3, 2}, ref.nearestNeighbours());
  }

  @Test
  void aRotatedOrScaledOutputIsMeasuredByItsDirectionOnly() {
    Evaluation.Embeddings ref = new Evaluation.Embeddings(FLOAT, LABELS);
    // Scaling changes nothing; image 3 turned onto the x axis loses its direction and its neighbour.
    float[][] q = {{2, 0.2f}, {3, 0.6f}, {0.1f, 1}, {1, 0}};
    double[] cos = new Evaluation.Embeddings(q, LABELS).cosines(ref);
    assertEquals(1.0, cos[0], 1e-6);
    assertEquals(1.0, cos[1], 1e-6);
    assertEquals(0.2 / Math.sqrt(1.04), cos[3], 1e-6);
    Evaluation.Embeddings quantized = new Evaluation.Embeddings(q, LABELS);
    // Under q, image 2 (0.1, 1) is nearer image 1 than the turned image 3, and image 3 nearest image 0.
    assertArrayEquals(new int[] {1, 0, 1, 0}, quantized.nearestNeighbours());
    assertEquals(0.5, quantized.retrievalAgreement(ref));
    assertEquals(0.5, quantized.nearestNeighbourAccuracy());
  }

  @Test
  void quantilesAreNearestRank() {
    double[] v = {5, 1, 4, 2, 3};
    assertEquals(1, Evaluation.quantile(v, 0.01));
    assertEquals(3, Evaluation.quantile(v, 0.5));
    assertEquals(5, Evaluation.quantile(v, 1));
    assertEquals(3, Evaluation.mean(v));
  }

  @Test
  void aZeroOutputHasCosineZeroWithANonZeroOne() {
    assertEquals(0, Evaluation.cosine(new float[] {0, 0}, new float[] {1, 0}));
    assertEquals(1, Evaluation.cosine(new float[] {0, 0}, new float[] {0, 0}));
  }
}
