package dev.vitq.quantizer;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * First and second moments of a linear layer's input over calibration images: the row count, the sum of rows and
 * {@code X^T X}, with every token of every image a row of {@code X}.
 *
 * @param features the input width
 * @param rows how many rows were seen
 * @param sum the sum of the rows, [features]
 * @param gram {@code X^T X}, [features, features] row-major
 */
record InputMoments(int features, long rows, double[] sum, double[] gram) {
  InputMoments {
    if (sum.length != features || gram.length != features * features) {
      throw new IllegalArgumentException("Moments of " + features + " features need " + features + " sums and "
          + features * features + " products");
    }
  }

  /** The mean row. */
  double[] mean() {
    double[] m = new double[features];
    for (int i = 0; i < features; i++) {
      m[i] = rows == 0 ? 0 : sum[i] / rows;
    }
    return m;
  }

  /**
   * Moments of the given float tensors, each with the given width on its last axis, computed by ONNX Runtime: the
   * model is extended with, per tensor, its rows {@code X} (a Reshape to [-1, width]), {@code X^T X}, the column sums
   * and the row count as outputs, and those are summed over the images in double precision in dataset order.
   *
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  static Map<String, InputMoments> collect(Model model, String input, Map<String, Integer> widths, ImageDataset data,
      int batchSize, InferenceSession.Config config, Progress progress) throws VitqException {
    Model sorted = OpsetUpgrade.to(model.withGraph(model.graph().topologicallySorted()), 13);
    Graph g = sorted.graph();
    GraphBuilder b = GraphBuilder.around(g);
    List<Value> outputs = new ArrayList<>(g.outputs());
    List<String> names = new ArrayList<>();
    Map<String, double[]> sums = new LinkedHashMap<>();
    Map<String, double[]> grams = new LinkedHashMap<>();
    long[] rows = new long[widths.size()];
    String axis0 = b.longs(0);
    for (Map.Entry<String, Integer> e : widths.entrySet()) {
      int n = e.getValue();
      String x = b.op("Reshape", List.of(e.getKey(), b.longs(-1, n)));
      String gram = b.op("MatMul", List.of(b.op("Transpose", List.of(x), Attribute.ofInts("perm", 1, 0)),
          x));
      String sum = b.op("ReduceSum", List.of(x, axis0), Attribute.of("keepdims", 0L));
      String shape = b.op("Shape", List.of(x));
      outputs.add(Value.of(gram, new TensorType(DType.FLOAT, List.of(Dim.of(n), Dim.of(n)))));
      outputs.add(Value.of(sum, new TensorType(DType.FLOAT, List.of(Dim.of(n)))));
      outputs.add(Value.of(shape, new TensorType(DType.INT64, List.of(Dim.of(2)))));
      names.addAll(List.of(gram, sum, shape));
      sums.put(e.getKey(), new double[n]);
      grams.put(e.getKey(), new double[n * n]);
    }
    List<Node> nodes = new ArrayList<>(g.nodes());
    nodes.addAll(b.nodes());
    Model extended = sorted.withGraph(g.withNodes(nodes).withOutputs(outputs));
    List<String> tensors = List.copyOf(widths.keySet());
    try (InferenceSession session = InferenceSession.of(extended, config)) {
      data.forEachBatch(batchSize, progress, batch -> {
        Map<String, HostTensor> out = session.run(Map.of(input, HostTensor.ofFloats(batch.shape(), batch.pixels())),
            names);
        for (int t = 0; t < tensors.size(); t++) {
          String tensor = tensors.get(t);
          add(grams.get(tensor), out.get(names.get(3 * t)).data().asFloatBuffer());
          add(sums.get(tensor), out.get(names.get(3 * t + 1)).data().asFloatBuffer());
          ByteBuffer shape = out.get(names.get(3 * t + 2)).data();
          rows[t] += shape.getLong(0);
        }
      });
    }
    Map<String, InputMoments> moments = new LinkedHashMap<>();
    for (int t = 0; t < tensors.size(); t++) {
      String tensor = tensors.get(t);
      moments.put(tensor, new InputMoments(widths.get(tensor), rows[t], sums.get(tensor), grams.get(tensor)));
    }
    return moments;
  }

  private static void add(double[] into, FloatBuffer values) {
    if (values.remaining() != into.length) {
      throw new IllegalStateException("Expected " + into.length + " values, got " + values.remaining());
    }
    for (int i = 0; i < into.length; i++) {
      into[i] += values.get(i);
    }
  }
}
