package dev.vitq.calibration;

import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Streams a dataset through a model in ONNX Runtime and gathers {@link TensorStats} for chosen intermediate
 * tensors. One session serves the whole pass; memory holds one batch of images, the observed tensors of one run and
 * the statistics, whatever the dataset's size.
 *
 * <p>Every observed tensor is a model output while statistics are gathered, so one run holds all of them at once:
 * ViT-Base at 224 pixels exposes 125 MB per image. A run therefore takes only as many images of the batch as fit
 * in {@link #RUN_BYTES}, measured on the first image (so it works for any model, recognised or not). The statistics do
 * not depend on that split: they see the same values in the same order either way.
 */
public final class ActivationStats {
  /** What one ONNX Runtime run may hold of observed tensors; a run has at least one image, whatever its size. */
  public static final long RUN_BYTES = 256L << 20;

  private ActivationStats() {}

  /**
   * Collects statistics.
   *
   * @param model the float model
   * @param input the image input's name
   * @param tensors the float tensors to observe
   * @param data the images
   * @param batchSize images decoded at a time; a run takes at most this many, fewer when the observed tensors of
   *     this many would pass {@link #RUN_BYTES}
   * @param config session settings
   * @param progress where to report
   * @return statistics per tensor, in the order asked
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  public static Map<String, TensorStats> collect(Model model, String input, List<String> tensors, ImageDataset data,
      int batchSize, InferenceSession.Config config, Progress progress) throws VitqException {
    return collect(model, input, tensors, data, batchSize, RUN_BYTES, config, progress);
  }

  /** {@link #collect} with a given byte budget per run. */
  static Map<String, TensorStats> collect(Model model, String input, List<String> tensors, ImageDataset data,
      int batchSize, long runBytes, InferenceSession.Config config, Progress progress) throws VitqException {
    Map<String, TensorStats> stats = new LinkedHashMap<>();
    tensors.forEach(t -> stats.put(t, new TensorStats(t)));
    // Images per run; 0 until the first image has been measured.
    int[] perRun = {0};
    // One direct buffer for every batch's pixels: direct memory is only freed by a garbage collection.
    ByteBuffer[] pixelBuffer = {null};
    try (InferenceSession session = InferenceSession.of(exposing(model, tensors), config)) {
      data.forEachBatch(batchSize, progress, batch -> {
        int bytes = batch.pixels().length * Float.BYTES;
        if (pixelBuffer[0] == null || pixelBuffer[0].capacity() < bytes) {
          pixelBuffer[0] = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }
        ByteBuffer pixels = pixelBuffer[0].slice(0, bytes).order(ByteOrder.LITTLE_ENDIAN);
        pixels.asFloatBuffer().put(batch.pixels());
        int next = 0;
        if (perRun[0] == 0) {
          long probe = run(session, input, tensors, stats, batch, pixels, 0, 1);
          perRun[0] = (int) Math.max(1, Math.min(batchSize, runBytes / Math.max(1, probe)));
          next = 1;
        }
        for (; next < batch.count(); next += perRun[0]) {
          run(session, input, tensors, stats, batch, pixels, next, Math.min(perRun[0], batch.count() - next));
        }
      });
    }
    return stats;
  }

  /** Runs {@code count} images of the batch from {@code first} and folds the outputs; returns their bytes. */
  private static long run(InferenceSession session, String input, List<String> tensors, Map<String, TensorStats> stats,
      ImageBatch batch, ByteBuffer pixels, int first, int count) throws VitqException {
    int image = 3 * batch.height() * batch.width() * Float.BYTES;
    HostTensor x = new HostTensor(DType.FLOAT, new long[] {count, 3, batch.height(), batch.width()},
        pixels.slice(first * image, count * image));
    long[] bytes = {0};
    session.run(Map.of(input, x), tensors, out -> {
      // Tensors are independent, so they are folded in parallel; each statistic is touched by one thread.
      out.entrySet().parallelStream().forEach(e -> {
        long[] shape = e.getValue().shape();
        ByteBuffer data = e.getValue().data();
        if (data.hasRemaining()) {
          stats.get(e.getKey()).add(data.asFloatBuffer(), shape.length == 0 ? 1 : (int) shape[shape.length - 1]);
        }
      });
      out.values().forEach(t -> bytes[0] += t.data().remaining());
    });
    return bytes[0];
  }

  /** The model with the given tensors added as graph outputs. */
  public static Model exposing(Model model, List<String> tensors) {
    Graph g = model.graph();
    Set<String> existing = g.outputs().stream().map(Value::name).collect(Collectors.toSet());
    List<Value> outputs = new ArrayList<>(g.outputs());
    for (String t : tensors) {
      if (!existing.contains(t)) {
        outputs.add(Value.of(t, new TensorType(DType.FLOAT, null)));
      }
    }
    return model.withGraph(g.withOutputs(outputs));
  }
}
