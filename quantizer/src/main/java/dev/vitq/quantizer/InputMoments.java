package dev.vitq.quantizer;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Attribute;
import dev.vitq.models.Cut;
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
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * First and second moments of a linear layer's input over calibration images: the row count, the sum of rows and
 * {@code X^T X}, with every token of every image a row of {@code X}. Bias correction needs the first alone, GPTQ both.
 *
 * @param features the input width
 * @param rows how many rows were seen
 * @param sum the sum of the rows, [features]
 * @param gram {@code X^T X}, [features, features] row-major, or empty when only the first moments were gathered
 */
record InputMoments(int features, long rows, double[] sum, double[] gram) {
  InputMoments {
    if (sum.length != features || (gram.length != features * features && gram.length != 0)) {
      throw new IllegalArgumentException("Moments of " + features + " features need " + features + " sums and "
          + features * features + " products or none");
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

  /** Receives the moments of one group of layer inputs, valid only during the call (their sums are reused). */
  @FunctionalInterface
  interface Group {
    void accept(Map<String, InputMoments> moments) throws VitqException;
  }

  /**
   * What gathering one input's moments holds: its double sums plus ONNX Runtime's float {@code X^T X} of a run, or
   * with first moments only ({@code gram} false) their sums and ONNX Runtime's float sums.
   */
  static long cost(int width, boolean gram) {
    return gram ? 12L * width * width : 12L * width;
  }

  /**
   * The moments of every tensor at once, first and second: {@link #collect(Model, String, Map, Set, ImageDataset,
   * int, long, InferenceSession.Config, Progress, Group)} with no budget.
   */
  static Map<String, InputMoments> collect(Model model, String input, Map<String, Integer> widths, ImageDataset data,
      int batchSize, InferenceSession.Config config, Progress progress) throws VitqException {
    Map<String, InputMoments> all = new LinkedHashMap<>();
    collect(model, input, widths, widths.keySet(), data, batchSize, Long.MAX_VALUE, config, progress, m -> m.forEach(
        (t, x) -> all.put(t, new InputMoments(x.features(), x.rows(), x.sum().clone(), x.gram().clone()))));
    return all;
  }

  /**
   * Moments of the given float tensors, each with the given width on its last axis, computed by ONNX Runtime and
   * handed over a group at a time, so that only one group's sums are held. Only the tensors in {@code grams} get
   * {@code X^T X}, which costs a product over the rows per image and {@code width^2} sums (ViT-Base's fc2: 3.7 GFLOP
   * and 9.4 million); the others get their first moments.
   *
   * <p>Each image runs alone, and its {@code X^T X} (a float product over its own rows) is added to double sums in
   * image order: the moments are the same whatever {@code batchSize} the images are decoded in. (Products over a
   * whole batch's rows rounded differently at every batch size, and so did GPTQ's weights.) The model runs in
   * {@link Stages}, each on the one tensor the previous stage left per image, so every node runs once per image
   * however many groups there are; a group holds a stage's inputs of at most {@code budget} {@link #cost}, or one
   * input when a single one costs more.
   *
   * @param batchSize images decoded at a time
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  static void collect(Model model, String input, Map<String, Integer> widths, Set<String> grams, ImageDataset data,
      int batchSize, long budget, InferenceSession.Config config, Progress progress, Group each)
      throws VitqException {
    if (widths.isEmpty()) {
      return;
    }
    Model sorted = OpsetUpgrade.to(model.withGraph(model.graph().topologicallySorted()), 13);
    Map<String, Long> costs = new LinkedHashMap<>();
    widths.forEach((t, n) -> costs.put(t, cost(n, grams.contains(t))));
    List<Stages.Stage> stages = Stages.of(sorted.graph(), input, costs, budget);
    List<List<List<String>>> groups = new ArrayList<>();
    int passes = 0;
    for (Stages.Stage stage : stages) {
      groups.add(groups(stage.tensors(), costs, budget));
      passes += groups.get(groups.size() - 1).size();
    }
    // The tensor the last stage left, per image in dataset order, and where the next stage's goes: two arrays of
    // every image's values, swapped between stages, and one pool of sums reused by every group, so that nothing
    // stage-sized becomes garbage (large short-lived arrays made ParallelGC grow its heap by gigabytes).
    Carried carried = new Carried();
    Carried next = new Carried();
    Pool pool = new Pool();
    ByteBuffer[] buffer = {null};
    try (Progress.Task task = progress.start("layer inputs", (long) passes * data.size())) {
      for (int s = 0; s < stages.size(); s++) {
        Stages.Stage stage = stages.get(s);
        next.count = 0;
        for (int g = 0; g < groups.get(s).size(); g++) {
          List<String> group = groups.get(s).get(g);
          String out = g == 0 ? stage.out() : null;
          Pass pass = new Pass(stageModel(sorted, input, stage, group, out, widths, grams), group, widths, grams,
              out, out == null ? null : next, data.size(), pool);
          try (InferenceSession session = InferenceSession.of(pass.model, config)) {
            if (s == 0) {
              data.forEachBatch(batchSize, Progress.NONE, batch -> {
                int image = 3 * batch.height() * batch.width();
                long[] shape = {1, 3, batch.height(), batch.width()};
                for (int i = 0; i < batch.count(); i++) {
                  ByteBuffer b = direct(buffer, image);
                  b.asFloatBuffer().put(batch.pixels(), i * image, image);
                  pass.run(session, input, new HostTensor(DType.FLOAT, shape, b));
                  task.advance(1);
                }
              });
            } else {
              for (int i = 0; i < carried.count; i++) {
                ByteBuffer b = direct(buffer, carried.perImage);
                b.asFloatBuffer().put(carried.values, i * carried.perImage, carried.perImage);
                pass.run(session, stage.in(), new HostTensor(DType.FLOAT, carried.shape, b));
                task.advance(1);
              }
            }
          }
          each.accept(pass.moments());
          pass.release();
        }
        Carried done = carried;
        carried = next;
        next = done;
      }
    }
  }

  /** A direct buffer of exactly {@code floats} values, the kept one when it is large enough. */
  private static ByteBuffer direct(ByteBuffer[] kept, int floats) {
    int bytes = floats * Float.BYTES;
    if (kept[0] == null || kept[0].capacity() < bytes) {
      kept[0] = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
    return kept[0].slice(0, bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** One stage's output for every image, one after another. */
  private static final class Carried {
    float[] values = new float[0];
    int perImage;
    int count;
    long[] shape;

    void add(HostTensor t, int images) {
      int n = Math.toIntExact(t.elementCount());
      if (count == 0) {
        perImage = n;
        shape = t.shape();
        if (values.length < (long) n * images) {
          values = new float[Math.multiplyExact(n, images)];
        }
      }
      t.data().asFloatBuffer().get(values, count * perImage, perImage);
      count++;
    }
  }

  /** Sums handed back after a group, reused by the next group of the same widths. */
  private static final class Pool {
    private final Map<Integer, List<double[]>> free = new java.util.HashMap<>();

    double[] take(int length) {
      List<double[]> list = free.get(length);
      if (list == null || list.isEmpty()) {
        return new double[length];
      }
      double[] a = list.remove(list.size() - 1);
      java.util.Arrays.fill(a, 0);
      return a;
    }

    void give(double[] a) {
      free.computeIfAbsent(a.length, k -> new ArrayList<>()).add(a);
    }
  }

  /** A stage's tensors in groups of at most {@code budget} cost (a costlier tensor alone); one group when none. */
  private static List<List<String>> groups(List<String> tensors, Map<String, Long> costs, long budget) {
    List<List<String>> groups = new ArrayList<>();
    List<String> current = new ArrayList<>();
    long used = 0;
    for (String t : tensors) {
      if (!current.isEmpty() && used + costs.get(t) > budget) {
        groups.add(current);
        current = new ArrayList<>();
        used = 0;
      }
      current.add(t);
      used += costs.get(t);
    }
    groups.add(current);
    return groups;
  }

  /**
   * The stage's nodes with, per tensor of the group, its rows {@code X} (a Reshape to [-1, width]), {@code X^T X}
   * (for the tensors in {@code grams}), the column sums and the row count (as floats) as outputs, after {@code out}
   * when it is not null.
   */
  private static Model stageModel(Model sorted, String input, Stages.Stage stage, List<String> group, String out,
      Map<String, Integer> widths, Set<String> grams) {
    List<Value> wanted = new ArrayList<>();
    if (out != null) {
      wanted.add(Value.of(out, new TensorType(DType.FLOAT, null)));
    }
    group.forEach(t -> wanted.add(Value.of(t, new TensorType(DType.FLOAT, null))));
    Model cut = stage.in().equals(input) ? Cut.before(sorted, wanted)
        : Cut.after(sorted, stage.in(), wanted, Set.of(input)).orElseThrow(() -> new IllegalStateException(
            "The stage after '" + stage.in() + "' reads the image input"));
    Graph g = cut.graph();
    GraphBuilder b = GraphBuilder.around(g);
    List<Value> outputs = new ArrayList<>();
    if (out != null) {
      outputs.add(wanted.get(0));
    }
    String axis0 = b.longs(0);
    for (String t : group) {
      int n = widths.get(t);
      String x = b.op("Reshape", List.of(t, b.longs(-1, n)));
      if (grams.contains(t)) {
        String gram = b.op("MatMul", List.of(b.op("Transpose", List.of(x), Attribute.ofInts("perm", 1, 0)), x));
        outputs.add(Value.of(gram, new TensorType(DType.FLOAT, List.of(Dim.of(n), Dim.of(n)))));
      }
      String sum = b.op("ReduceSum", List.of(x, axis0), Attribute.of("keepdims", 0L));
      String shape = b.op("Cast", List.of(b.op("Shape", List.of(x))), Attribute.of("to", (long) DType.FLOAT.code()));
      outputs.add(Value.of(sum, new TensorType(DType.FLOAT, List.of(Dim.of(n)))));
      outputs.add(Value.of(shape, new TensorType(DType.FLOAT, List.of(Dim.of(2)))));
    }
    List<Node> nodes = new ArrayList<>(g.nodes());
    nodes.addAll(b.nodes());
    return cut.withGraph(g.withNodes(nodes).withOutputs(outputs));
  }

  /** One run over every image: a stage model, its outputs and the sums they add to. */
  private static final class Pass {
    private final Model model;
    private final List<String> tensors;
    private final Map<String, Integer> widths;
    private final String out;
    private final List<String> names = new ArrayList<>();
    private final List<double[]> grams = new ArrayList<>();
    private final List<double[]> sums = new ArrayList<>();
    private final List<float[]> windows = new ArrayList<>();
    /** Where each tensor's outputs start among {@link #names}: its {@code X^T X} if gathered, its sums, its rows. */
    private final int[] firstOutput;
    private final long[] rows;
    private final Carried carry;
    private final int images;
    private final Pool pool;

    Pass(Model model, List<String> tensors, Map<String, Integer> widths, Set<String> withGram, String out,
        Carried carry, int images, Pool pool) {
      this.model = model;
      this.tensors = tensors;
      this.widths = widths;
      this.out = out;
      this.carry = carry;
      this.images = images;
      this.pool = pool;
      this.rows = new long[tensors.size()];
      this.firstOutput = new int[tensors.size()];
      model.graph().outputs().forEach(v -> names.add(v.name()));
      int next = out == null ? 0 : 1;
      for (int t = 0; t < tensors.size(); t++) {
        int n = widths.get(tensors.get(t));
        boolean gram = withGram.contains(tensors.get(t));
        grams.add(gram ? pool.take(n * n) : new double[0]);
        sums.add(pool.take(n));
        windows.add(new float[Math.min(gram ? n * n : n, 1 << 14)]);
        firstOutput[t] = next;
        next += gram ? 3 : 2;
      }
    }

    /** Runs one image and adds its moments; keeps the stage's output for the next stage. */
    void run(InferenceSession session, String in, HostTensor x) throws VitqException {
      session.run(Map.of(in, x), names, result -> {
        if (out != null) {
          carry.add(result.get(out), images);
        }
        // Tensors are independent, so they are added in parallel; each sum is touched by one thread.
        IntStream.range(0, tensors.size()).parallel().forEach(t -> {
          int at = firstOutput[t];
          if (grams.get(t).length > 0) {
            add(grams.get(t), result.get(names.get(at++)).data().asFloatBuffer(), windows.get(t));
          }
          add(sums.get(t), result.get(names.get(at)).data().asFloatBuffer(), windows.get(t));
          rows[t] += (long) result.get(names.get(at + 1)).data().asFloatBuffer().get(0);
        });
      });
    }

    /** The moments, valid until {@link #release}. */
    Map<String, InputMoments> moments() {
      Map<String, InputMoments> moments = new LinkedHashMap<>();
      for (int t = 0; t < tensors.size(); t++) {
        moments.put(tensors.get(t), new InputMoments(widths.get(tensors.get(t)), rows[t], sums.get(t), grams.get(t)));
      }
      return moments;
    }

    void release() {
      grams.stream().filter(g -> g.length > 0).forEach(pool::give);
      sums.forEach(pool::give);
    }
  }

  /** Adds the values to the sums, a cache-sized window at a time. */
  private static void add(double[] into, FloatBuffer values, float[] window) {
    if (values.remaining() != into.length) {
      throw new IllegalStateException("Expected " + into.length + " values, got " + values.remaining());
    }
    for (int from = 0; from < into.length; from += window.length) {
      int n = Math.min(window.length, into.length - from);
      values.get(from, window, 0, n);
      for (int i = 0; i < n; i++) {
        into[from + i] += window[i];
      }
    }
  }
}
