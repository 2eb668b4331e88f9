package dev.vitq.models.canon;

import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns what an exporter wrote into the canonical graph structure recognition reads, without changing the math:
 * shape arithmetic folded for the model's image size ({@link ConstantFolding}), no-op nodes and guards removed and a
 * scale split across queries and keys merged ({@link Simplification}), and what nothing reads any more dropped
 * ({@link DeadCode}), repeated until nothing changes. Value names survive, so a plan made on the canonical graph
 * names the tensors of the original.
 *
 * <p>The image input's height and width are fixed to the given size (batch stays symbolic): an export with dynamic
 * spatial dimensions computes its reshape targets from them, and only a fixed size lets those fold. {@code convert}
 * never canonicalises; quantization and recognition do.
 *
 * {@snippet lang="java" :
 * Model canonical = Canonicalizer.apply(model, 224, 224);
 * VitStructure vit = VitRecognizer.recognize(canonical, "vit.onnx").require();
 * }
 */
public final class Canonicalizer {
  /** Rounds of passes before giving up on a fixed point (a ViT export settles in two or three). */
  private static final int MAX_ROUNDS = 8;
  /** The name given to an unnamed batch dimension, so reshape targets built from it can be matched. */
  static final String BATCH = "batch";

  private Canonicalizer() {}

  /**
   * The canonical form of a model.
   *
   * @param height the image height to fold shapes for, or 0 to take the input's (or, when dynamic, the one its
   *     position embedding implies)
   * @param width the image width, likewise
   */
  public static Model apply(Model model, int height, int width) {
    Graph g = withImageSize(model.graph(), height, width);
    if (!spatialFixed(g)) {
      // Fold what does not depend on the size first (a position embedding gathered from a table, say), then look.
      Graph first = settle(g);
      Optional<int[]> side = impliedImageSize(first);
      g = side.isPresent() ? withImageSize(g, side.get()[0], side.get()[1]) : first;
    }
    return model.withGraph(settle(g));
  }

  private static Graph settle(Graph start) {
    Graph g = start;
    for (int round = 0; round < MAX_ROUNDS; round++) {
      Graph before = g;
      Map<String, Facts> facts = ShapeInference.infer(g);
      g = ConstantFolding.apply(g, facts);
      if (g != before) {
        facts = ShapeInference.infer(g);
      }
      g = Simplification.apply(g, facts);
      g = DeadCode.apply(g);
      if (g == before) {
        break;
      }
    }
    return g;
  }

  /** The first graph input of rank 4 that is not an initializer, if any. */
  static Optional<Value> imageInput(Graph g) {
    for (Value v : g.inputs()) {
      if (g.initializer(v.name()).isEmpty() && v.type() != null && v.type().shape() != null
          && v.type().shape().size() == 4) {
        return Optional.of(v);
      }
    }
    return Optional.empty();
  }

  private static boolean spatialFixed(Graph g) {
    return imageInput(g).map(v -> v.type().shape().get(2).isFixed() && v.type().shape().get(3).isFixed())
        .orElse(true);
  }

  /** The graph with the image input's spatial dimensions fixed (when given and dynamic) and its batch named. */
  private static Graph withImageSize(Graph g, int height, int width) {
    Optional<Value> image = imageInput(g);
    if (image.isEmpty()) {
      return g;
    }
    Value v = image.get();
    List<Dim> dims = new ArrayList<>(v.type().shape());
    boolean changed = false;
    if (!dims.get(0).isFixed() && dims.get(0).symbol() == null) {
      dims.set(0, Dim.symbol(BATCH));
      changed = true;
    }
    int[] size = {height, width};
    for (int i = 0; i < 2; i++) {
      if (size[i] > 0 && !dims.get(2 + i).isFixed()) {
        dims.set(2 + i, Dim.of(size[i]));
        changed = true;
      }
    }
    if (!changed) {
      return g;
    }
    Value fixed = v.withType(new TensorType(v.type().dtype(), dims));
    List<Value> inputs = g.inputs().stream().map(i -> i == v ? fixed : i).toList();
    return g.withInputs(inputs);
  }

  /**
   * The image size a dynamic-size ViT was trained at, from its patch convolution and position embedding: the
   * embedding's length less the fewest prefix tokens (class, distillation) that leaves a square number of patches.
   */
  static Optional<int[]> impliedImageSize(Graph g) {
    Optional<Value> image = imageInput(g);
    if (image.isEmpty()) {
      return Optional.empty();
    }
    GraphIndex idx = GraphIndex.of(g);
    Node conv = idx.consumers(image.get().name()).stream().filter(n -> n.is("Conv")).findFirst().orElse(null);
    Tensor w = conv == null ? null : idx.constant(conv.input(1)).orElse(null);
    if (w == null || w.rank() != 4) {
      return Optional.empty();
    }
    long width = w.dims().get(0);
    long stride = conv.intsAttr("strides").map(s -> s.get(0)).orElse(1L);
    long tokens = 0;
    for (Tensor t : g.initializers()) {
      if (t.rank() == 3 && t.dims().get(0) == 1 && t.dims().get(2) == width) {
        tokens = Math.max(tokens, t.dims().get(1));
      }
    }
    for (int prefix = 0; prefix <= 16 && prefix < tokens; prefix++) {
      long patches = tokens - prefix;
      long side = Math.round(Math.sqrt(patches));
      if (side * side == patches) {
        int px = (int) (side * stride);
        return Optional.of(new int[] {px, px});
      }
    }
    return Optional.empty();
  }
}
