package dev.vitq.calibration;

import java.nio.file.Path;
import java.util.List;

/**
 * Preprocessed images ready for a model: {@code pixels} is [count, 3, height, width], row-major.
 *
 * @param pixels the input tensor's data
 * @param count images in the batch
 * @param height image height
 * @param width image width
 * @param labels class index per image, or -1 where the dataset has no classes
 * @param files the source files, in batch order
 */
public record ImageBatch(float[] pixels, int count, int height, int width, int[] labels, List<Path> files) {
  /** The input tensor's shape. */
  public long[] shape() {
    return new long[] {count, 3, height, width};
  }
}
