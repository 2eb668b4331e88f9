package dev.vitq.converter;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.Attribute;
import dev.vitq.models.Cut;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Splits a quantized ViT at the input of block K into a device encoder (embedding and blocks 1..K, ending in the
 * boundary tokens as 8-bit levels, optionally fewer tokens) and a cloud decoder (the rest, starting from those
 * levels). Without token reduction the pair computes exactly what the single quantized model computes: the device
 * ends at the boundary's QuantizeLinear and the cloud starts at its DequantizeLinear.
 */
final class Split {
  /** The device's output tokens and the cloud's input of the same name. */
  static final String TOKENS = "boundary_tokens";
  /** The dequantization scale of the tokens. */
  static final String SCALE = "boundary_scale";
  /** The zero point of the tokens. */
  static final String ZERO_POINT = "boundary_zero_point";
  /** The per-channel factor the dequantized tokens are multiplied by (ones when there is none). */
  static final String CHANNEL_FACTOR = "boundary_channel_factor";

  private Split() {}

  /** Which tokens cross the boundary. */
  sealed interface Reduction {
    /** Every token. */
    record None() implements Reduction {}

    /**
     * The prefix tokens and the share {@code keep} of patch tokens the class token attends to most in block K; with
     * {@code fuse}, one more token: the mean of the dropped ones weighted by that attention (EViT's fused token).
     */
    record Attention(double keep, boolean fuse) implements Reduction {}

    /** The prefix tokens and the mean of every {@code size} x {@code size} square of neighbouring patch tokens. */
    record Pool(int size) implements Reduction {}
  }

  /**
   * The two halves and what crosses between them.
   *
   * @param device embedding and blocks 1..K
   * @param cloud blocks K+1..N and the head
   * @param tokens tokens per image crossing the boundary
   * @param width values per token
   * @param quantizer the boundary's quantizer (its levels cross)
   * @param channelFactor per-channel factor of the dequantized tokens
   */
  record Parts(Model device, Model cloud, int tokens, int width, Quantizer quantizer, float[] channelFactor) {
    /** Bytes of boundary tokens per image. */
    long bytesPerImage() {
      return (long) tokens * width;
    }
  }

  /**
   * Splits {@code model} (float) quantized by {@code plan} after {@code k} blocks.
   *
   * @param floatCloud whether the cloud runs the float blocks instead of the quantized ones
   * @throws VitqException if the split or the reduction does not fit the model
   */
  static Parts of(Model model, VitStructure vit, QuantPlan plan, int k, Reduction reduction, boolean floatCloud)
      throws VitqException {
    int depth = vit.blocks().size();
    if (k < 1 || k >= depth) {
      throw new VitqException("--split must leave at least one block on each side: 1.." + (depth - 1) + " for this "
          + depth + "-block model, got " + k + ".");
    }
    String boundary = vit.blocks().get(k).input();
    PlanEntry entry = plan.entry(boundary).orElseThrow(() -> new VitqException(
        "The plan does not quantize the input of block " + (k + 1) + ", so it cannot cross as 8-bit levels."));
    Quantizer q = entry.quantizer();
    if (q.kind() != Quantizer.Kind.UNIFORM || q.signed()) {
      throw new VitqException("The input of block " + (k + 1) + " is not quantized to unsigned uniform levels.");
    }
    int width = vit.embedDim();
    float base = QdqLowering.scaleInput(entry)[0];
    float[] factor = new float[width];
    for (int c = 0; c < width; c++) {
      factor[c] = q.perChannel() ? q.scale(c) / base : 1f;
    }
    if (q.perChannel() && QdqLowering.scaleInput(entry).length != 1) {
      throw new VitqException("The input of block " + (k + 1) + " has per-channel scales that are not powers of two "
          + "of one base scale; vitq splits only where one scale and zero point describe the tokens.");
    }
    Model quantized = QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY);
    int tokens = tokensAfter(vit, reduction);

    // Device: everything up to the boundary (and block K's attention for the reduction), then the reduction and
    // the boundary quantizer, spelled as the lowering spells it so the levels are the same numbers.
    List<Value> needed = new ArrayList<>(List.of(Value.of(boundary, new TensorType(DType.FLOAT, null))));
    String probabilities = vit.blocks().get(k - 1).attention().probabilities();
    if (reduction instanceof Reduction.Attention) {
      needed.add(Value.of(probabilities, new TensorType(DType.FLOAT, null)));
    }
    Model prefix = Cut.before(quantized, needed);
    GraphBuilder b = GraphBuilder.around(prefix.graph()).scope("vitq_boundary");
    String reduced = reduce(b, boundary, probabilities, vit, reduction);
    String scale = b.initializer("vitq_boundary_scale", Tensor.ofFloats("", List.of(), new float[] {base}));
    String zero = b.initializer("vitq_boundary_zero_point", Tensor.ofBytes("", DType.UINT8, List.of(),
        new byte[] {(byte) q.zeroPoints()[0]}));
    String factors = b.initializer("vitq_boundary_channel_factor", Tensor.ofFloats("", List.of((long) width),
        factor));
    String levels = b.op("QuantizeLinear", List.of(b.op("Mul", List.of(reduced, b.op("Reciprocal",
        List.of(factors)))), scale, zero));
    if (q.bits() < 8) {
      levels = b.op("Clip", List.of(levels,
          b.initializer("vitq_boundary_qmin", Tensor.ofBytes("", DType.UINT8, List.of(), new byte[] {0})),
          b.initializer("vitq_boundary_qmax", Tensor.ofBytes("", DType.UINT8, List.of(),
              new byte[] {(byte) q.qmax()}))));
    }
    b.add(identity(levels, TOKENS));
    b.add(identity(scale, SCALE));
    b.add(identity(zero, ZERO_POINT));
    b.add(identity(factors, CHANNEL_FACTOR));
    List<Value> wire = wire(tokens, width);
    Model device = extend(prefix, b, prefix.graph().inputs(), wire);
    device = FastLayerNorm.apply(device, vit, vit.tokens());

    // Cloud: the rest of the quantized (or float) model from the boundary, fed by dequantizing the wire.
    Model source = floatCloud ? model : quantized;
    String start = floatCloud ? boundary : dequantized(quantized, boundary, q.perChannel());
    Model suffix = Cut.after(source, start, vit.output(), Set.of(vit.input())).orElseThrow(() -> new VitqException(
        "Blocks " + (k + 1) + ".." + depth + " read the image itself, so the model cannot be split there."));
    GraphBuilder c = GraphBuilder.around(suffix.graph()).scope("vitq_boundary");
    for (Value v : wire) {
      c.reserve(v.name());
    }
    String deq = c.op("Mul", List.of(c.op("DequantizeLinear", List.of(TOKENS, SCALE, ZERO_POINT)), CHANNEL_FACTOR));
    c.add(identity(deq, start));
    List<Value> outputs = suffix.graph().outputs();
    Graph g = suffix.graph();
    List<Value> inputs = new ArrayList<>(wire);
    g.inputs().stream().filter(v -> !v.name().equals(start)).forEach(inputs::add);
    Model cloud = extend(suffix.withGraph(g.withInputs(List.of())), c, inputs, outputs);
    cloud = FastLayerNorm.apply(cloud, vit, tokens);
    if (tokens != vit.tokens()) {
      takesFewerTokens(cloud, tokens, width, k);
    }
    return new Parts(device, cloud, tokens, width, q, factor);
  }

  /**
   * Runs the cloud half once on a zero boundary of the reduced length: an export whose graph spells the number of
   * tokens out (rather than reading it from the tensor) cannot take fewer, and that is better said now than found
   * by the first request.
   */
  private static void takesFewerTokens(Model cloud, int tokens, int width, int k) throws VitqException {
    java.util.Map<String, HostTensor> zero = new java.util.LinkedHashMap<>();
    zero.put(TOKENS, new HostTensor(DType.UINT8, new long[] {1, tokens, width}, java.nio.ByteBuffer.allocateDirect(
        tokens * width)));
    zero.put(SCALE, HostTensor.ofFloats(new long[0], new float[] {1f}));
    zero.put(ZERO_POINT, new HostTensor(DType.UINT8, new long[0], java.nio.ByteBuffer.allocateDirect(1)));
    float[] ones = new float[width];
    java.util.Arrays.fill(ones, 1f);
    zero.put(CHANNEL_FACTOR, HostTensor.ofFloats(new long[] {width}, ones));
    try (InferenceSession s = InferenceSession.of(cloud, new InferenceSession.Config(1, false))) {
      s.run(zero, List.of(s.outputNames().get(0)));
    } catch (VitqException e) {
      throw new VitqException("After block " + k + " this model's graph fixes the number of tokens, so the cloud half "
          + "cannot take " + tokens + "; export it without --keep-tokens or --pool.", e);
    }
  }

  /** The value the quantized model's blocks read instead of {@code boundary}: its dequantized levels. */
  private static String dequantized(Model quantized, String boundary, boolean factorForm) throws VitqException {
    for (Node n : quantized.graph().nodes()) {
      // The lowering rewires every reader of the boundary; the first node after block K that reads a value derived
      // from it is the norm, whose input is the dequantized boundary.
      if (n.inputs().contains(boundary) && (n.is("Mul") || n.is("QuantizeLinear"))) {
        String v = n.output();
        Node next = n;
        while (!next.is("DequantizeLinear")) {
          next = consumer(quantized, v);
          v = next.output();
        }
        Node after = consumer(quantized, v);
        return factorForm && after != null && after.is("Mul") ? after.output() : v;
      }
    }
    throw new VitqException("The quantized model has no quantizer on the boundary tensor " + boundary + ".");
  }

  private static Node consumer(Model m, String value) {
    for (Node n : m.graph().nodes()) {
      if (n.inputs().contains(value)) {
        return n;
      }
    }
    return null;
  }

  /** Tokens per image after the reduction. */
  static int tokensAfter(VitStructure vit, Reduction reduction) throws VitqException {
    int prefix = vit.embedding().prefixTokens();
    int patches = vit.tokens() - prefix;
    return switch (reduction) {
      case Reduction.None n -> vit.tokens();
      case Reduction.Attention a -> {
        if (prefix == 0 || vit.embedding().classToken() == null) {
          throw new VitqException("--keep-tokens ranks patches by the class token's attention, and this model has "
              + "no class token; use --pool 2.");
        }
        if (!(a.keep() > 0 && a.keep() <= 1)) {
          throw new VitqException("--keep-tokens must be in (0, 1], got " + a.keep() + ".");
        }
        int kept = Math.max(1, (int) Math.round(a.keep() * patches));
        if (a.fuse() && kept >= patches) {
          throw new VitqException("--fuse needs --keep-tokens below 1: no token is dropped to fuse.");
        }
        yield prefix + kept + (a.fuse() ? 1 : 0);
      }
      case Reduction.Pool p -> {
        int side = (int) Math.round(Math.sqrt(patches));
        if (p.size() < 2 || side * side != patches || side % p.size() != 0) {
          throw new VitqException("--pool " + p.size() + " needs a square patch grid whose side it divides; this "
              + "model has " + patches + " patch tokens.");
        }
        yield prefix + (side / p.size()) * (side / p.size());
      }
    };
  }

  /** The reduced boundary tokens. */
  private static String reduce(GraphBuilder b, String x, String probabilities, VitStructure vit, Reduction r)
      throws VitqException {
    int prefix = vit.embedding().prefixTokens();
    int total = vit.tokens();
    long width = vit.embedDim();
    return switch (r) {
      case Reduction.None n -> x;
      case Reduction.Attention a -> {
        int keep = tokensAfter(vit, r) - prefix - (a.fuse() ? 1 : 0);
        // The class token's attention to every token, summed over heads: [batch, tokens].
        String toAll = b.op("Gather", List.of(probabilities, b.scalarLong(0)), Attribute.of("axis", 2L));
        String summed = b.op("ReduceSum", List.of(toAll, b.longs(1)), Attribute.of("keepdims", 0L));
        String patchScores = b.op("Slice", List.of(summed, b.longs(prefix), b.longs(total), b.longs(1)));
        List<String> top = b.op("", "TopK", List.of(patchScores, b.longs(keep)), 2, Attribute.of("axis", 1L),
            Attribute.of("largest", 1L), Attribute.of("sorted", 1L));
        String index = b.op("Unsqueeze", List.of(b.op("Add", List.of(top.get(1), b.longs(prefix))), b.longs(2)));
        String expanded = b.op("Expand", List.of(index, b.longs(1, 1, width)));
        String kept = b.op("GatherElements", List.of(x, expanded), Attribute.of("axis", 1L));
        String head = b.op("Slice", List.of(x, b.longs(0), b.longs(prefix), b.longs(1)));
        if (!a.fuse()) {
          yield b.op("Concat", List.of(head, kept), Attribute.of("axis", 1L));
        }
        // Dropped tokens' attention-weighted mean: (sum over all patches - sum over kept) / (their weight).
        String patches = b.op("Slice", List.of(x, b.longs(prefix), b.longs(total), b.longs(1)));
        String all = b.op("MatMul", List.of(b.op("Unsqueeze", List.of(patchScores, b.longs(1))), patches));
        String keptSum = b.op("MatMul", List.of(b.op("Unsqueeze", List.of(top.get(0), b.longs(1))), kept));
        String weight = b.op("Sub", List.of(b.op("ReduceSum", List.of(patchScores, b.longs(1))),
            b.op("ReduceSum", List.of(top.get(0), b.longs(1)))));
        String fused = b.op("Div", List.of(b.op("Sub", List.of(all, keptSum)),
            b.op("Unsqueeze", List.of(weight, b.longs(2)))));
        yield b.op("Concat", List.of(head, kept, fused), Attribute.of("axis", 1L));
      }
      case Reduction.Pool p -> {
        long side = Math.round(Math.sqrt(total - prefix));
        String patches = b.op("Slice", List.of(x, b.longs(prefix), b.longs(total), b.longs(1)));
        String grid = b.op("Reshape", List.of(b.op("Transpose", List.of(patches), Attribute.ofInts("perm", 0, 2, 1)),
            b.longs(0, width, side, side)));
        String pooled = b.op("AveragePool", List.of(grid), Attribute.ofInts("kernel_shape", p.size(), p.size()),
            Attribute.ofInts("strides", p.size(), p.size()));
        String sequence = b.op("Transpose", List.of(b.op("Reshape", List.of(pooled, b.longs(0, width, -1)))),
            Attribute.ofInts("perm", 0, 2, 1));
        if (prefix == 0) {
          yield sequence;
        }
        String head = b.op("Slice", List.of(x, b.longs(0), b.longs(prefix), b.longs(1)));
        yield b.op("Concat", List.of(head, sequence), Attribute.of("axis", 1L));
      }
    };
  }

  /** The values that cross: the levels and what dequantizes them. */
  static List<Value> wire(int tokens, int width) {
    return List.of(
        Value.of(TOKENS, new TensorType(DType.UINT8, List.of(Dim.symbol("batch"), Dim.of(tokens), Dim.of(width)))),
        Value.of(SCALE, new TensorType(DType.FLOAT, List.of())),
        Value.of(ZERO_POINT, new TensorType(DType.UINT8, List.of())),
        Value.of(CHANNEL_FACTOR, new TensorType(DType.FLOAT, List.of(Dim.of(width)))));
  }

  private static Node identity(String from, String to) {
    return new Node("vitq_boundary/Identity_" + to, "Identity", "", List.of(from), List.of(to), List.of(),
        dev.vitq.models.Blob.EMPTY);
  }

  /** {@code m} with the builder's nodes and initializers added, and these inputs and outputs. */
  private static Model extend(Model m, GraphBuilder b, List<Value> inputs, List<Value> outputs) {
    Graph g = m.graph();
    List<Node> nodes = new ArrayList<>(b.nodes());
    nodes.addAll(g.nodes());
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(b.initializers());
    return m.withGraph(g.withNodes(nodes).withInitializers(inits).withInputs(inputs).withOutputs(outputs)
        .topologicallySorted());
  }
}
