package dev.vitq.quantizer.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ObjectiveTest {
  private static final float[] TARGET = {4, 0, 0, 0, 3, 0, 0, 0, 5};

  @Test
  void infoNceMatchesItsDefinitionOnTwoImages() {
    float[] q = {1, 0, 1, 1};
    float[] f = {1, 0, 0, 1};
    double t = 0.5;
    // Image 0: cos to its own target 1, to the other 0. Image 1: cos sqrt(1/2) to both.
    double c = Math.sqrt(0.5);
    double expected = ((Math.log(Math.exp(1 / t) + Math.exp(0)) - 1 / t)
        + (Math.log(2 * Math.exp(c / t)) - c / t)) / 2;
    assertEquals(expected, Objective.INFONCE.loss(q, f, 2, t), 1e-9);
  }

  @Test
  void infoNcePrefersOutputsThatPointAtTheirOwnImage() {
    float[] swapped = {0, 3, 0, 4, 0, 0, 0, 0, 5};
    double matched = Objective.INFONCE.loss(TARGET.clone(), TARGET, 3, 0.1);
    double confused = Objective.INFONCE.loss(swapped, TARGET, 3, 0.1);
    assertTrue(matched < confused, matched + " should be below " + confused);
    // Cosine similarity ignores the scale of an output, as a contrastive loss should.
    float[] doubled = new float[TARGET.length];
    for (int i = 0; i < doubled.length; i++) {
      doubled[i] = 2 * TARGET[i];
    }
    assertEquals(matched, Objective.INFONCE.loss(doubled, TARGET, 3, 0.1), 1e-9);
  }

  @Test
  void mseAndKlAreZeroOnlyForEqualOutputs() {
    assertEquals(0, Objective.MSE.loss(TARGET.clone(), TARGET, 3, 1), 0);
    assertEquals(0, Objective.KL.loss(TARGET.clone(), TARGET, 3, 1), 1e-12);
    float[] off = TARGET.clone();
    off[0] = 1;
    assertEquals(1.0, Objective.MSE.loss(off, TARGET, 3, 1), 1e-12);
    assertTrue(Objective.KL.loss(off, TARGET, 3, 1) > 0);
  }

  @Test
  void perImageTermsAverageToTheLossAndLocateTheError() {
    float[] off = TARGET.clone();
    off[4] = -3;
    for (Objective o : Objective.values()) {
      double[] terms = o.perImage(off, TARGET, 3, 0.1);
      assertEquals(3, terms.length);
      assertEquals(o.loss(off, TARGET, 3, 0.1), (terms[0] + terms[1] + terms[2]) / 3, 1e-12, o.cliName());
      // Only image 1's output moved; its term is the largest.
      assertTrue(terms[1] > terms[0] && terms[1] > terms[2], o.cliName());
    }
    assertEquals(12.0, Objective.MSE.perImage(off, TARGET, 3, 1)[1], 1e-12);
  }

  @Test
  void outputsThatDoNotSplitIntoImagesAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> Objective.INFONCE.loss(new float[5], new float[5], 2, 1));
  }
}
