package dev.vitq.quantizer.search;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Decoded images held in memory. */
record Images(float[] pixels, int count, int height, int width) {
  static Images load(ImageDataset data) throws VitqException {
    int plane = 3 * data.preprocessing().height() * data.preprocessing().width();
    float[] all = new float[data.size() * plane];
    int[] n = {0};
    if (data.size() > 0) {
      data.forEachBatch(ChunkedRuns.CHUNK, Progress.NONE, b -> {
        System.arraycopy(b.pixels(), 0, all, n[0] * plane, b.count() * plane);
        n[0] += b.count();
      });
    }
    return new Images(Arrays.copyOf(all, n[0] * plane), n[0], data.preprocessing().height(),
        data.preprocessing().width());
  }

  /**
   * Each image blended with another of the set, {@code lambda * own + (1 - lambda) * other} with {@code lambda}
   * uniform in [0.3, 0.7] and the other from a seeded shuffle (never the image itself). Preprocessing is affine
   * per channel, so blending preprocessed pixels is blending the pictures.
   */
  Images blended(long seed) {
    if (count < 2) {
      return this;
    }
    int plane = 3 * height * width;
    Random random = new Random(seed);
    List<Integer> others = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      others.add(i);
    }
    Collections.shuffle(others, random);
    float[] out = new float[pixels.length];
    for (int i = 0; i < count; i++) {
      int other = others.get(i) == i ? (i + 1) % count : others.get(i);
      float lambda = (float) (0.3 + 0.4 * random.nextDouble());
      for (int k = 0; k < plane; k++) {
        out[i * plane + k] = lambda * pixels[i * plane + k] + (1 - lambda) * pixels[other * plane + k];
      }
    }
    return new Images(out, count, height, width);
  }

  HostTensor tensor() {
    return HostTensor.ofFloats(new long[] {count, 3, height, width}, pixels);
  }

  /** The first output of running all images through a session, {@code perRun} at a time. */
  static float[] run(InferenceSession session, String input, String output, Images images,
      Map<String, HostTensor> extra, int perRun) throws VitqException {
    return images.count == 0 ? new float[0]
        : ChunkedRuns.runChunked(session, Map.of(input, images.tensor()), extra, output, images.count, perRun).floats();
  }
}
