package dev.vitq.quantizer.search;

import java.util.List;
import java.util.Objects;

/**
 * One visit of one block by the search.
 *
 * @param pass the pass, from 0
 * @param block the block, from 0
 * @param lossBefore the loss with the block's scales as they were
 * @param lossAfter the loss with the block's scales as they are now (equal to before when nothing was better)
 * @param accepted whether the block's scales changed
 * @param evaluations candidates evaluated
 * @param bestPerGeneration the best loss seen by the end of each generation
 * @param validationBefore the loss on the validation images before, when the best candidate was checked there
 * @param validationAfter the best candidate's loss on the validation images, when checked
 */
public record BlockResult(int pass, int block, double lossBefore, double lossAfter, boolean accepted, int evaluations,
    List<Double> bestPerGeneration, Double validationBefore, Double validationAfter) {
  public BlockResult {
    bestPerGeneration = List.copyOf(Objects.requireNonNull(bestPerGeneration, "bestPerGeneration"));
  }
}
