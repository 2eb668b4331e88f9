package dev.vitq.calibration;

import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Streams a dataset through a model in ONNX Runtime and gathers {@link TensorStats} for chosen intermediate
 * tensors. One session serves the whole pass; memory holds one batch and the statistics, whatever the dataset's
 * size.
 */
public final class ActivationStats {
  private ActivationStats() {}

  /**
   * Collects statistics.
   *
   * @param model the float model
   * @param input the image input's name
   * @param tensors the float tensors to observe
   * @param data the images
   * @param batchSize images per run
   * @param config session settings
   * @param progress where to report
   * @return statistics per tensor, in the order asked
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  public static Map<String, TensorStats> collect(Model model, String input, List<String> tensors, ImageDataset data,
      int batchSize, InferenceSession.Config config, Progress progress) throws VitqException {
    Map<String, TensorStats> stats = new LinkedHashMap<>();
    tensors.forEach(t -> stats.put(t, new TensorStats(t)));
    try (InferenceSession session = InferenceSession.of(exposing(model, tensors), config)) {
      data.forEachBatch(batchSize, progress, batch -> {
        Map<String, HostTensor> out = session.run(Map.of(input, HostTensor.ofFloats(batch.shape(), batch.pixels())),
            tensors);
        // Tensors are independent, so they are folded in parallel; each histogram is touched by one thread.
        out.entrySet().parallelStream().forEach(e -> {
          long[] shape = e.getValue().shape();
          stats.get(e.getKey()).add(e.getValue().floats(), (int) shape[shape.length - 1]);
        });
      });
    }
    return stats;
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
