package dev.vitq.quantizer.search;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Running a session over many images a few at a time, so memory holds one run's activations whatever the count;
 * shared by the Evol-Q and the auto-scheme searches.
 */
final class ChunkedRuns {
  private ChunkedRuns() {}

  /** Images decoded at a time. */
  static final int CHUNK = 64;
  /** What one ONNX Runtime run may hold of a simulated model's activations, roughly. */
  private static final long RUN_BYTES = 256L << 20;

  /**
   * Images per ONNX Runtime run: as many as the simulated model's activations of one block allow within
   * {@link #RUN_BYTES} (attention maps and MLP activations, a few copies each with fake quantization), at most
   * {@value #CHUNK}. ViT-Base at 224 runs 14 at a time; the 32-pixel shared model, all of a batch.
   */
  static int imagesPerRun(VitStructure vit) {
    long mlp = vit.blocks().get(0).mlp().fc1().outFeatures();
    long perImage = 4L * vit.tokens() * (4L * vit.heads() * vit.tokens() + 4L * mlp + 8L * vit.embedDim());
    return (int) Math.max(1, Math.min(CHUNK, RUN_BYTES / perImage));
  }

  /**
   * Runs a session over {@code count} images, {@code perRun} at a time: each of {@code batched} holds the images
   * along its first axis and is fed a slice of them, {@code fixed} is fed whole to every run; the outputs are joined
   * along their first axis. Memory holds one run's activations, whatever the count.
   */
  static HostTensor runChunked(InferenceSession session, Map<String, HostTensor> batched,
      Map<String, HostTensor> fixed, String output, int count, int perRun) throws VitqException {
    if (count == 0) {
      throw new IllegalArgumentException("No images to run");
    }
    ByteBuffer joined = null;
    HostTensor first = null;
    for (int start = 0; start < count; start += perRun) {
      int n = Math.min(perRun, count - start);
      Map<String, HostTensor> feed = new LinkedHashMap<>(fixed);
      for (Map.Entry<String, HostTensor> e : batched.entrySet()) {
        feed.put(e.getKey(), slice(e.getValue(), start, n, count));
      }
      HostTensor out = session.run(feed, List.of(output)).get(output);
      if (joined == null) {
        // Every run's output holds the same bytes per image: the first run sizes the whole.
        joined = ByteBuffer.allocateDirect(out.data().remaining() / n * count).order(ByteOrder.LITTLE_ENDIAN);
        first = out;
      }
      joined.put(out.data());
    }
    long[] shape = first.shape();
    shape[0] = count;
    return new HostTensor(first.dtype(), shape, joined.flip());
  }

  /** Images {@code start .. start + n} of a tensor holding {@code count} along its first axis. */
  private static HostTensor slice(HostTensor t, int start, int n, int count) {
    long[] shape = t.shape();
    int per = t.data().remaining() / count;
    shape[0] = n;
    return new HostTensor(t.dtype(), shape, t.data().slice(start * per, n * per));
  }
}
