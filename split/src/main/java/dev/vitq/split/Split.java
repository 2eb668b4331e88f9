package dev.vitq.split;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.converter.Deploy;
import dev.vitq.converter.Target;
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
import java.util.Map;
import java.util.Set;

/**
 * Splits a quantized ViT at the input of block K into a device encoder (embedding and blocks 1..K, ending in the
 * boundary tokens as 8-bit levels, optionally fewer tokens) and a cloud decoder (the rest, starting from those
 * levels). Without token reduction the pair computes exactly what the single quantized model computes with its
 * residual stream quantized at the boundary: the device ends at the boundary's QuantizeLinear and the cloud starts at
 * its DequantizeLinear. (The single model quantizes the stream for block K's norm only and carries it on in float;
 * crossing as levels quantizes it for the residual Add too.)
 */
final class Split {
  private Split() {}

  /**
   * The two halves and what crosses between them.
   *
   * @param device embedding and blocks 1..K
   * @param cloud blocks K+1..N and the head
   * @param tokens tokens per image crossing the boundary
   * @param width values per token
   * @param quantizer the boundary's quantizer in the plan (its levels cross when there is no codec)
   * @param channelFactor per-channel factor of the plan's dequantized levels
   * @param codec the coding of the tokens, or null for the plan's 8-bit levels
   */
  record Parts(Model device, Model cloud, int tokens, int width, Quantizer quantizer, float[] channelFactor,
      BoundaryCodec codec) {
    /** Bytes per token on the wire. */
    int bytesPerToken() {
      return codec == null ? width : codec.bytesPerToken();
    }

    /** Bytes of boundary codes per image. */
    long bytesPerImage() {
      return (long) tokens * bytesPerToken();
    }
  }

  /**
   * The device half up to the reduced float tokens and the cloud's blocks from float tokens: what a codec is fitted
   * and scored on before it is chosen.
   *
   * @param device outputs {@code tokens}, float [batch, tokens, width]
   * @param tokens the device's output
   * @param cloud reads {@code start} (float tokens) and outputs the logits
   * @param start the cloud's input
   */
  record Probe(Model device, String tokens, Model cloud, String start) {}

  /** The boundary's plan entry, checked. */
  private static Quantizer boundaryQuantizer(VitStructure vit, QuantPlan plan, int k) throws VitqException {
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
    if (q.bits() > 8) {
      throw new VitqException("The tokens cross the split as 8-bit levels, and the plan quantizes the input of block "
          + (k + 1) + " to " + q.bits() + " bits; split a plan with 8-bit activations (w8a8, w4a8).");
    }
    if (q.perChannel() && QdqLowering.scaleInput(entry).length != 1) {
      throw new VitqException("The input of block " + (k + 1) + " has per-channel scales that are not powers of two "
          + "of one base scale; vitq splits only where one scale and zero point describe the tokens.");
    }
    return q;
  }

  /**
   * The quantized model with its residual stream quantized at the boundary for every reader, as it crosses: the single
   * quantized model quantizes it for block K's norm only. That one quantization of the stream is what the pair adds.
   */
  private static Model boundaryQuantized(Model shipped, VitStructure vit, QuantPlan plan, int k)
      throws VitqException {
    return QdqLowering.lower(shipped, plan, QdqLowering.Mode.DEPLOY, Set.of(vit.blocks().get(k).input()));
  }

  /** The quantized model's prefix up to the boundary, with the reduction added; returns the reduced tokens' name. */
  private static String devicePrefix(Model quantized, VitStructure vit, int k, Reduction reduction, Model[] prefixOut,
      GraphBuilder[] builderOut) throws VitqException {
    String boundary = vit.blocks().get(k).input();
    List<Value> needed = new ArrayList<>(List.of(Value.of(boundary, new TensorType(DType.FLOAT, null))));
    String probabilities = vit.blocks().get(k - 1).attention().probabilities();
    if (reduction instanceof Reduction.Attention) {
      needed.add(Value.of(probabilities, new TensorType(DType.FLOAT, null)));
    }
    Model prefix = Cut.before(quantized, needed);
    GraphBuilder b = GraphBuilder.around(prefix.graph()).scope("vitq_boundary");
    prefixOut[0] = prefix;
    builderOut[0] = b;
    return reduce(b, boundary, probabilities, vit, reduction);
  }

  /** The value the cloud's blocks start from, and the model they are cut from. */
  private static Model cloudSource(Model model, Model quantized, boolean floatCloud) {
    return floatCloud ? model : quantized;
  }

  private static String cloudStart(Model quantized, VitStructure vit, int k, Quantizer q, boolean floatCloud)
      throws VitqException {
    String boundary = vit.blocks().get(k).input();
    return floatCloud ? boundary : dequantized(quantized, boundary, q.perChannel());
  }

  /**
   * The halves a codec is chosen on, for a split of {@code model} quantized by {@code plan} after {@code k} blocks
   * ({@code shipped} as for {@link #of}).
   *
   * @throws VitqException if the split or the reduction does not fit the model
   */
  static Probe probe(Model model, Model shipped, VitStructure vit, QuantPlan plan, int k, Reduction reduction,
      boolean floatCloud) throws VitqException {
    Quantizer q = boundaryQuantizer(vit, plan, k);
    tokensAfter(vit, reduction);
    Model quantized = boundaryQuantized(shipped, vit, plan, k);
    Model[] prefix = new Model[1];
    GraphBuilder[] builder = new GraphBuilder[1];
    String reduced = devicePrefix(quantized, vit, k, reduction, prefix, builder);
    String out = builder[0].op("Identity", List.of(reduced));
    Model device = extend(prefix[0], builder[0], prefix[0].graph().inputs(),
        List.of(Value.of(out, new TensorType(DType.FLOAT, null))));
    String start = cloudStart(quantized, vit, k, q, floatCloud);
    Model cloud = Cut.after(cloudSource(model, quantized, floatCloud), start, vit.output(), Set.of(vit.input()))
        .orElseThrow(() -> new VitqException("Blocks " + (k + 1) + ".." + vit.blocks().size() + " read the image "
            + "itself, so the model cannot be split there."));
    return new Probe(device, out, cloud, start);
  }

  /**
   * Splits {@code model} (float) quantized by {@code plan} after {@code k} blocks.
   *
   * @param shipped the float model the quantized halves are lowered from: {@code model}, or it with its weights and
   *     biases corrected ({@link dev.vitq.quantizer.WeightCorrection}); a float cloud runs {@code model}'s blocks
   * @param floatCloud whether the cloud runs the float blocks instead of the quantized ones
   * @param codec how the tokens are coded, or null for the plan's 8-bit levels (then, without reduction, the pair
   *     computes exactly what the single quantized model computes with its stream quantized at the boundary)
   * @throws VitqException if the split or the reduction does not fit the model
   */
  static Parts of(Model model, Model shipped, VitStructure vit, QuantPlan plan, int k, Reduction reduction,
      boolean floatCloud, BoundaryCodec codec, Target target) throws VitqException {
    Quantizer q = boundaryQuantizer(vit, plan, k);
    int depth = vit.blocks().size();
    String boundary = vit.blocks().get(k).input();
    PlanEntry entry = plan.entry(boundary).orElseThrow();
    int width = vit.embedDim();
    float base = QdqLowering.scaleInput(entry)[0];
    float[] factor = new float[width];
    for (int c = 0; c < width; c++) {
      factor[c] = q.perChannel() ? q.scale(c) / base : 1f;
    }
    Model quantized = boundaryQuantized(shipped, vit, plan, k);
    int tokens = tokensAfter(vit, reduction);

    // Device: everything up to the boundary (and block K's attention for the reduction), then the reduction and
    // the coding. Without a codec the plan's quantizer codes the tokens, spelled as the lowering spells it so the
    // levels are the same numbers. Only per-image values leave the device; constants live in the cloud half.
    Model[] prefixOut = new Model[1];
    GraphBuilder[] builderOut = new GraphBuilder[1];
    String reduced = devicePrefix(quantized, vit, k, reduction, prefixOut, builderOut);
    Model prefix = prefixOut[0];
    GraphBuilder b = builderOut[0];
    String levels;
    if (codec == null) {
      String scale = b.initializer("vitq_boundary_scale", Tensor.ofFloats("", List.of(), new float[] {base}));
      String zero = b.initializer("vitq_boundary_zero_point", Tensor.ofBytes("", DType.UINT8, List.of(),
          new byte[] {(byte) q.zeroPoints()[0]}));
      String factors = b.initializer("vitq_boundary_channel_factor", Tensor.ofFloats("", List.of((long) width),
          factor));
      levels = b.op("QuantizeLinear", List.of(b.op("Mul", List.of(reduced, b.op("Reciprocal",
          List.of(factors)))), scale, zero));
      if (q.bits() < 8) {
        levels = b.op("Clip", List.of(levels,
            b.initializer("vitq_boundary_qmin", Tensor.ofBytes("", DType.UINT8, List.of(), new byte[] {0})),
            b.initializer("vitq_boundary_qmax", Tensor.ofBytes("", DType.UINT8, List.of(),
                new byte[] {(byte) q.qmax()}))));
      }
    } else {
      levels = codec.encode(b, reduced);
    }
    b.add(identity(levels, Bundle.TOKENS));
    int bytesPerToken = codec == null ? width : codec.bytesPerToken();
    List<Value> wire = wire(tokens, bytesPerToken);
    Model device = extend(prefix, b, prefix.graph().inputs(), wire);
    device = Deploy.apply(device, vit, vit.tokens(), target);

    // Cloud: the rest of the quantized (or float) model from the boundary, fed by decoding the wire.
    String start = cloudStart(quantized, vit, k, q, floatCloud);
    Model suffix = Cut.after(cloudSource(model, quantized, floatCloud), start, vit.output(), Set.of(vit.input()))
        .orElseThrow(() -> new VitqException("Blocks " + (k + 1) + ".." + depth + " read the image itself, so the "
            + "model cannot be split there."));
    GraphBuilder c = GraphBuilder.around(suffix.graph()).scope("vitq_boundary");
    for (Value v : wire) {
      c.reserve(v.name());
    }
    String deq;
    if (codec == null) {
      String scale = c.initializer("vitq_boundary_scale", Tensor.ofFloats("", List.of(), new float[] {base}));
      String zero = c.initializer("vitq_boundary_zero_point", Tensor.ofBytes("", DType.UINT8, List.of(),
          new byte[] {(byte) q.zeroPoints()[0]}));
      String factors = c.initializer("vitq_boundary_channel_factor", Tensor.ofFloats("", List.of((long) width),
          factor));
      deq = c.op("Mul", List.of(c.op("DequantizeLinear", List.of(Bundle.TOKENS, scale, zero)), factors));
    } else {
      deq = codec.decode(c, Bundle.TOKENS);
    }
    c.add(identity(deq, start));
    List<Value> outputs = suffix.graph().outputs();
    Graph g = suffix.graph();
    List<Value> inputs = new ArrayList<>(wire);
    g.inputs().stream().filter(v -> !v.name().equals(start)).forEach(inputs::add);
    Model cloud = extend(suffix.withGraph(g.withInputs(List.of())), c, inputs, outputs);
    cloud = Deploy.apply(cloud, vit, tokens, target);
    if (tokens != vit.tokens()) {
      takesFewerTokens(cloud, tokens, bytesPerToken, k);
    }
    return new Parts(device, cloud, tokens, width, q, factor, codec);
  }

  /**
   * Runs the cloud half once on a zero boundary of the reduced length: an export whose graph spells the number of
   * tokens out (rather than reading it from the tensor) cannot take fewer, and that is better said now than found
   * by the first request.
   */
  private static void takesFewerTokens(Model cloud, int tokens, int bytesPerToken, int k) throws VitqException {
    Map<String, HostTensor> zero = Map.of(Bundle.TOKENS, new HostTensor(DType.UINT8,
        new long[] {1, tokens, bytesPerToken}, java.nio.ByteBuffer.allocateDirect(tokens * bytesPerToken)));
    try (InferenceSession s = InferenceSession.of(cloud, new InferenceSession.Config(1, false))) {
      s.run(zero, List.of(s.outputNames().get(0)));
    } catch (VitqException e) {
      throw new VitqException("After block " + k + " this model's graph fixes the number of tokens, so the cloud half "
          + "cannot take " + tokens + "; export it without token reduction.", e);
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
    if (!(reduction instanceof Reduction.None) && vit.head().pooling() == VitStructure.Head.Pooling.NONE) {
      throw new VitqException(reduction.describe() + " changes which tokens cross, and this model outputs one vector "
          + "per token, so every token must; export it without token reduction.");
    }
    if (!(reduction instanceof Reduction.None) && vit.blocks().stream().anyMatch(b -> b.attention().rotary())) {
      // A rotary embedding turns each token's queries and keys by its place in the grid: fewer or merged tokens
      // have no place, and the cloud's rotation tables are made for every token.
      throw new VitqException(reduction.describe() + " changes which tokens cross, and this model's blocks turn "
          + "queries and keys by each token's grid position (rotary embedding); export it without token reduction.");
    }
    return switch (reduction) {
      case Reduction.None n -> vit.tokens();
      case Reduction.Attention a -> {
        if (prefix == 0 || vit.embedding().classToken() == null) {
          throw new VitqException("--keep-tokens ranks patch tokens by the class token's attention, and this model "
              + "has no class token; use --pool 2 or --merge N instead.");
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
      case Reduction.Merge m -> {
        if (m.merged() < 1 || m.merged() > (patches + 1) / 2) {
          throw new VitqException("--merge must be 1.." + (patches + 1) / 2 + " (at most every other patch token "
              + "merges), got " + m.merged() + ".");
        }
        yield vit.tokens() - m.merged();
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
      case Reduction.Merge m -> merge(b, x, prefix, total, width, m.merged());
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

  /**
   * ToMe's bipartite soft matching on the patch tokens: even-numbered ones form A, odd-numbered ones B; each token of
   * A is matched to the token of B of highest cosine similarity, the {@code r} best-matched A tokens are averaged into
   * their matches (a B token that takes k of them becomes the mean of k + 1 tokens), and the rest of A stays. Out:
   * the prefix tokens, the unmerged A tokens (most similar first), then B.
   */
  private static String merge(GraphBuilder b, String x, int prefix, int total, long width, int r) {
    int n = total - prefix;
    int na = (n + 1) / 2;
    int nb = n / 2;
    long[] even = new long[na];
    long[] odd = new long[nb];
    for (int i = 0; i < na; i++) {
      even[i] = 2L * i;
    }
    long[] range = new long[nb];
    for (int i = 0; i < nb; i++) {
      odd[i] = 2L * i + 1;
      range[i] = i;
    }
    String patches = b.op("Slice", List.of(x, b.longs(prefix), b.longs(total), b.longs(1)));
    String a = b.op("Gather", List.of(patches, b.longs(even)), Attribute.of("axis", 1L));
    String bs = b.op("Gather", List.of(patches, b.longs(odd)), Attribute.of("axis", 1L));
    // Spelled with ops whose form is the same from opset 13 on (ReduceL2 and ReduceMax changed at 18).
    String an = b.op("Div", List.of(a, b.op("Sqrt", List.of(b.op("ReduceSum", List.of(b.op("Mul", List.of(a, a)),
        b.longs(2)), Attribute.of("keepdims", 1L))))));
    String bn = b.op("Div", List.of(bs, b.op("Sqrt", List.of(b.op("ReduceSum", List.of(b.op("Mul", List.of(bs, bs)),
        b.longs(2)), Attribute.of("keepdims", 1L))))));
    String similarity = b.op("MatMul", List.of(an, b.op("Transpose", List.of(bn), Attribute.ofInts("perm", 0, 2, 1))));
    List<String> top1 = b.op("", "TopK", List.of(similarity, b.longs(1)), 2, Attribute.of("axis", 2L),
        Attribute.of("largest", 1L), Attribute.of("sorted", 1L));
    String best = b.op("Reshape", List.of(top1.get(0), b.longs(0, na)));
    String match = b.op("Reshape", List.of(top1.get(1), b.longs(0, na)));
    // One sort of A by its best similarity splits it into the merged (first r) and the kept (the rest).
    String order = b.op("", "TopK", List.of(best, b.longs(na)), 2, Attribute.of("axis", 1L),
        Attribute.of("largest", 1L), Attribute.of("sorted", 1L)).get(1);
    String mergedIdx = b.op("Slice", List.of(order, b.longs(0), b.longs(r), b.longs(1)));
    String keptIdx = b.op("Slice", List.of(order, b.longs(r), b.longs(na), b.longs(1)));
    String merged = b.op("GatherElements", List.of(a, b.op("Expand", List.of(b.op("Unsqueeze", List.of(mergedIdx,
        b.longs(2))), b.longs(1, 1, width)))), Attribute.of("axis", 1L));
    String kept = b.op("GatherElements", List.of(a, b.op("Expand", List.of(b.op("Unsqueeze", List.of(keptIdx,
        b.longs(2))), b.longs(1, 1, width)))), Attribute.of("axis", 1L));
    String destination = b.op("GatherElements", List.of(match, mergedIdx), Attribute.of("axis", 1L));
    // One-hot [batch, r, |B|] of each merged token's destination: sums and counts by two products.
    String oneHot = b.op("Cast", List.of(b.op("Equal", List.of(b.op("Unsqueeze", List.of(destination, b.longs(2))),
        b.longs(range)))), Attribute.of("to", (long) DType.FLOAT.code()));
    String sums = b.op("MatMul", List.of(b.op("Transpose", List.of(oneHot), Attribute.ofInts("perm", 0, 2, 1)),
        merged));
    String counts = b.op("Unsqueeze", List.of(b.op("ReduceSum", List.of(oneHot, b.longs(1)),
        Attribute.of("keepdims", 0L)), b.longs(2)));
    String averaged = b.op("Div", List.of(b.op("Add", List.of(bs, sums)), b.op("Add", List.of(counts,
        b.scalar(1f)))));
    List<String> parts = new ArrayList<>();
    if (prefix > 0) {
      parts.add(b.op("Slice", List.of(x, b.longs(0), b.longs(prefix), b.longs(1))));
    }
    parts.add(kept);
    parts.add(averaged);
    return b.op("Concat", parts, Attribute.of("axis", 1L));
  }

  /** The value that crosses: each image's coded tokens. */
  static List<Value> wire(int tokens, int bytesPerToken) {
    return List.of(Value.of(Bundle.TOKENS, new TensorType(DType.UINT8, List.of(Dim.symbol("batch"), Dim.of(tokens),
        Dim.of(bytesPerToken)))));
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
