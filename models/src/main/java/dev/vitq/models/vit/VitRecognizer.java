package dev.vitq.models.vit;

import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure.Attention;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Embedding;
import dev.vitq.models.vit.VitStructure.Gelu;
import dev.vitq.models.vit.VitStructure.Head;
import dev.vitq.models.vit.VitStructure.Linear;
import dev.vitq.models.vit.VitStructure.Mlp;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Finds the ViT in a graph: the patch embedding on the image input, then block after block along the residual
 * stream (norm, attention, residual add, norm, MLP, residual add), then the final norm and the head.
 *
 * <p>It recognises structure, not spelling: layer norm as the operator or spelled out, GELU as the operator or its
 * Erf or tanh formula, q/k/v fused (split by Split, Slice, Gather or Reshape) or separate, linear layers as Gemm or
 * MatMul+Add, at any opset. What it cannot find, it names.
 *
 * {@snippet lang="java" :
 * VitStructure vit = VitRecognizer.recognize(model, "vit.onnx");
 * int depth = vit.blocks().size();
 * }
 */
public final class VitRecognizer {
  private static final Set<String> PASS_THROUGH =
      Set.of("Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Squeeze", "Unsqueeze");

  private final Patterns p;
  private final GraphIndex idx;
  private final String source;

  private VitRecognizer(Model model, String source) {
    this.idx = GraphIndex.of(model.graph());
    this.p = new Patterns(idx);
    this.source = source;
  }

  /**
   * Recognises the ViT structure of a model.
   *
   * @param source the model's file name, for messages
   * @throws VitqException naming the first part of a ViT that was not found
   */
  public static VitStructure recognize(Model model, String source) throws VitqException {
    return new VitRecognizer(model, source).recognize();
  }

  private VitqException missing(String what) {
    return new VitqException(source + " is not a ViT vitq recognises: " + what + ".");
  }

  private VitStructure recognize() throws VitqException {
    Value image = imageInput();
    Embedding embedding = embedding(image.name());
    Tensor convWeight = idx.constant(embedding.weight()).orElseThrow();
    int embedDim = (int) (long) convWeight.dims().get(0);
    int patch = (int) (long) convWeight.dims().get(2);

    List<Block> blocks = new ArrayList<>();
    String x = embedding.output();
    Norm finalNorm;
    while (true) {
      int i = blocks.size();
      Norm norm1 = p.normFrom(x).orElseThrow(() -> missing(blocks.isEmpty()
          ? "no layer norm reads the embedded tokens"
          : "no layer norm reads the output of block " + (blocks.size() - 1)));
      Node residual1 = residualAdd(x);
      if (residual1 == null) {
        finalNorm = norm1;
        break;
      }
      Attention attention = attention(i, norm1.output(), Patterns.other(residual1, x));
      String x1 = residual1.output();
      Norm norm2 = p.normFrom(x1).orElseThrow(() -> missing("block " + i + " has no layer norm after attention"));
      Node residual2 = residualAdd(x1);
      if (residual2 == null) {
        throw missing("block " + i + " has no residual add after its MLP");
      }
      Mlp mlp = mlp(i, norm2.output(), Patterns.other(residual2, x1));
      blocks.add(new Block(i, x, norm1, attention, residual1.output(), norm2, mlp, residual2.output()));
      x = residual2.output();
    }
    if (blocks.isEmpty()) {
      throw missing("no transformer block follows the embedding");
    }
    Head head = head(finalNorm.output());
    int heads = heads(blocks.get(0), embedDim);
    int tokens = tokens(embedding, image, patch);
    int imageSize = (int) Math.round(Math.sqrt(tokens - embedding.prefixTokens())) * patch;
    return new VitStructure(image.name(), head.linear().output(), embedding, blocks, finalNorm, head, embedDim, heads,
        tokens, imageSize, patch, head.linear().outFeatures());
  }

  private Value imageInput() throws VitqException {
    for (Value v : idx.graph().inputs()) {
      if (idx.initializer(v.name()).isEmpty() && v.type() != null && v.type().shape() != null
          && v.type().shape().size() == 4) {
        if (!isFloat(v.type().dtype())) {
          throw missing("its image input '" + v.name() + "' holds " + v.type().dtype() + ", not floating point");
        }
        return v;
      }
    }
    throw missing("it has no image input of rank 4 [batch, channels, height, width]");
  }

  private Embedding embedding(String image) throws VitqException {
    Node conv = null;
    for (Node c : p.dataConsumers(image)) {
      if (c.is("Conv") && c.input(0).equals(image)
          && idx.constant(c.input(1)).filter(t -> t.rank() == 4).isPresent()) {
        conv = c;
        break;
      }
    }
    if (conv == null) {
      throw missing("no patch embedding (a Conv on the image input) was found");
    }
    Tensor weight = idx.constant(conv.input(1)).orElseThrow();
    if (!isFloat(weight.dtype())) {
      throw missing("the patch embedding's weight holds " + weight.dtype() + ", not floating point");
    }
    String x = conv.output();
    for (List<Node> cs = p.dataConsumers(x); cs.size() == 1 && PASS_THROUGH.contains(cs.get(0).opType());
        cs = p.dataConsumers(x)) {
      x = cs.get(0).output();
    }
    String classToken = null;
    String pos = null;
    int prefix = 0;
    for (int step = 0; step < 4; step++) {
      List<Node> cs = p.dataConsumers(x);
      if (cs.size() != 1) {
        break;
      }
      Node c = cs.get(0);
      if (c.is("Concat") && c.inputs().size() >= 2) {
        for (String in : c.inputs()) {
          if (in.equals(x)) {
            continue;
          }
          String token = tokenSource(in);
          if (token == null) {
            throw missing("the patch tokens are concatenated with something other than a class token");
          }
          classToken = classToken == null ? token : classToken;
          prefix++;
        }
      } else if (c.is("Add") && idx.constant(Patterns.other(c, x) == null ? "" : Patterns.other(c, x)).isPresent()) {
        pos = Patterns.other(c, x);
      } else if (!c.is("Identity") && !c.is("Dropout")) {
        break;
      }
      x = c.output();
    }
    return new Embedding(conv.output(), conv.input(1), conv.input(2).isEmpty() ? null : conv.input(2), classToken,
        pos, x, prefix);
  }

  static boolean isFloat(DType t) {
    return t == DType.FLOAT || t == DType.FLOAT16 || t == DType.BFLOAT16 || t == DType.DOUBLE;
  }

  /** The constant token behind an Expand/Tile of a class token, or null. */
  private String tokenSource(String value) {
    String v = value;
    for (int i = 0; i < 4; i++) {
      Optional<Tensor> t = idx.constant(v);
      if (t.isPresent()) {
        return t.get().rank() == 3 && t.get().dims().get(1) == 1 ? v : null;
      }
      Node n = idx.producer(v).orElse(null);
      if (n == null || !(n.is("Expand") || n.is("Tile") || n.is("Identity") || n.is("Reshape"))) {
        return null;
      }
      v = n.input(0);
    }
    return null;
  }

  /** The residual Add reading the stream {@code x}, or null. */
  private Node residualAdd(String x) {
    for (Node c : p.dataConsumers(x)) {
      if (c.is("Add") && Patterns.other(c, x) != null && !idx.isConstant(Patterns.other(c, x))) {
        return c;
      }
    }
    return null;
  }

  private Attention attention(int i, String h, String out) throws VitqException {
    Linear proj = p.linearProducing(out)
        .orElseThrow(() -> missing("block " + i + " has no output projection before its residual add"));
    Set<String> region = between(h, proj.input());
    List<Node> softmaxes = region.stream().map(v -> idx.producer(v).orElseThrow()).filter(n -> n.is("Softmax"))
        .toList();
    if (softmaxes.size() != 1) {
      throw missing("block " + i + " has " + softmaxes.size() + " softmax nodes in its attention, not 1");
    }
    Node softmax = softmaxes.get(0);
    Node context = null;
    for (Node c : p.dataConsumers(skipCasts(softmax.output()))) {
      if (c.is("MatMul")) {
        context = c;
      }
    }
    Node scores = null;
    String s = softmax.input(0);
    for (int step = 0; step < 6 && scores == null; step++) {
      Node n = idx.producer(s).orElse(null);
      if (n == null) {
        break;
      }
      if (n.is("MatMul")) {
        scores = n;
      } else if (n.is("Mul") || n.is("Div") || n.is("Add") || n.is("Cast") || n.is("Where")) {
        s = idx.isConstant(n.input(0)) ? n.input(1) : n.input(0);
      } else {
        break;
      }
    }
    if (context == null || scores == null) {
      throw missing("block " + i + " has no " + (scores == null ? "query-key" : "probability-value")
          + " MatMul around its softmax");
    }
    List<Linear> projections = p.linearsFrom(h);
    if (projections.size() == 3) {
      Linear q = reaching(projections, scores.input(0), h);
      Linear k = reaching(projections, scores.input(1), h);
      Linear v = reaching(projections, context.input(1), h);
      if (q == null || k == null || v == null || q == k || k == v || q == v) {
        throw missing("block " + i + " has three projections, but they do not feed queries, keys and values");
      }
      projections = List.of(q, k, v);
    } else if (projections.size() != 1) {
      throw missing("block " + i + " has " + projections.size()
          + " linear layers reading its first norm, not 1 (fused q/k/v) or 3");
    }
    return new Attention(projections, scores.input(0), scores.input(1), scores.output(), softmax.output(),
        context.input(0), context.input(1), context.output(), proj);
  }

  /** Follows single Cast and Dropout consumers. */
  private String skipCasts(String v) {
    String cur = v;
    for (int i = 0; i < 3; i++) {
      List<Node> cs = p.dataConsumers(cur);
      if (cs.size() == 1 && (cs.get(0).is("Cast") || cs.get(0).is("Dropout"))) {
        cur = cs.get(0).output();
      } else {
        break;
      }
    }
    return cur;
  }

  /** The layer among {@code layers} whose output {@code target} depends on, searching back to {@code stop}. */
  private Linear reaching(List<Linear> layers, String target, String stop) {
    Set<String> ancestors = between(stop, target);
    Linear found = null;
    for (Linear l : layers) {
      if (ancestors.contains(l.output())) {
        if (found != null) {
          return null;
        }
        found = l;
      }
    }
    return found;
  }

  /** Values computed on the way from {@code from} to {@code to}: {@code to}'s ancestors, searched back to {@code from}. */
  private Set<String> between(String from, String to) {
    Set<String> seen = new HashSet<>();
    ArrayDeque<String> work = new ArrayDeque<>(List.of(to));
    while (!work.isEmpty()) {
      String v = work.pop();
      if (v.equals(from) || !seen.add(v)) {
        continue;
      }
      idx.producer(v).ifPresent(n -> n.inputs().stream().filter(in -> !in.isEmpty()).forEach(work::push));
    }
    seen.removeIf(v -> idx.producer(v).isEmpty());
    return seen;
  }

  private Mlp mlp(int i, String h, String out) throws VitqException {
    Linear fc1 = p.linearFrom(h).orElseThrow(() -> missing("block " + i + " has no linear layer after its second norm"));
    Gelu gelu = p.geluFrom(fc1.output()).orElseThrow(() -> missing("block " + i + " has no GELU after fc1"));
    Linear fc2 = p.linearProducing(out).orElseThrow(() -> missing("block " + i + " has no linear layer ending its MLP"));
    if (!fc2.input().equals(gelu.output())) {
      throw missing("block " + i + "'s MLP is not fc1, GELU, fc2 in a row");
    }
    return new Mlp(fc1, gelu, fc2);
  }

  private Head head(String f) throws VitqException {
    List<Node> cs = p.dataConsumers(f);
    if (cs.size() != 1) {
      throw missing("the final norm feeds " + cs.size() + " nodes instead of one classification head");
    }
    Node c = cs.get(0);
    Head.Pooling pooling;
    String pooled;
    if (c.is("Gather") && c.intAttr("axis", 0) == 1 && idx.longs(c.input(1)).filter(v -> v.length == 1 && v[0] == 0)
        .isPresent()) {
      pooling = Head.Pooling.CLASS_TOKEN;
      pooled = c.output();
    } else if (c.is("Slice") && idx.longs(c.input(1)).filter(v -> v.length == 1).isPresent()) {
      long start = idx.longs(c.input(1)).get()[0];
      Node next = p.dataConsumers(c.output()).stream().findFirst().orElse(null);
      if (start == 0 && next != null && (next.is("Squeeze") || next.is("Reshape") || next.is("Flatten"))) {
        pooling = Head.Pooling.CLASS_TOKEN;
        pooled = next.output();
      } else if (start >= 1 && next != null && next.is("ReduceMean")) {
        pooling = Head.Pooling.MEAN;
        pooled = next.output();
      } else {
        throw missing("the head slices the tokens in a way vitq does not know");
      }
    } else if (c.is("ReduceMean")) {
      pooling = Head.Pooling.MEAN;
      pooled = c.output();
    } else {
      throw missing("the final norm is followed by " + c.opType() + ", not a class-token or mean pooling");
    }
    Linear linear = p.linearFrom(pooled).orElseThrow(() -> missing("no classification layer follows the pooling"));
    if (!idx.isGraphOutput(linear.output())) {
      throw missing("the classification layer's output is not the model's output");
    }
    return new Head(pooling, pooled, linear);
  }

  /** Heads from the per-head Reshape of block 0 ([..., heads, headDim]), else from the attention scale. */
  private int heads(Block block, int embedDim) throws VitqException {
    Set<String> region = between(block.norm1().output(), block.attention().scores());
    for (String v : region) {
      Node n = idx.producer(v).orElseThrow();
      if (!n.is("Reshape")) {
        continue;
      }
      List<Long> shape = shapeConstants(n.input(1));
      int k = shape.size();
      if (k >= 2 && shape.get(k - 1) != null && shape.get(k - 2) != null && shape.get(k - 1) > 0
          && shape.get(k - 2) > 0 && shape.get(k - 1) * shape.get(k - 2) == embedDim) {
        return (int) (long) shape.get(k - 2);
      }
    }
    for (String v : between(block.norm1().output(), block.attention().softmax())) {
      Node n = idx.producer(v).orElseThrow();
      if ((n.is("Mul") || n.is("Div")) && n.inputs().size() == 2) {
        Optional<Float> c = idx.scalar(n.input(1)).or(() -> idx.scalar(n.input(0)));
        if (c.isPresent() && c.get() > 0) {
          double headDim = n.is("Mul") ? 1 / (c.get() * c.get()) : c.get() * c.get();
          long rounded = Math.round(headDim);
          if (Math.abs(headDim - rounded) < 1e-2 * rounded && rounded > 0 && embedDim % rounded == 0) {
            return (int) (embedDim / rounded);
          }
        }
      }
    }
    throw missing("the number of attention heads cannot be told from block 0");
  }

  /** The entries of a Reshape target: constants where known, null where computed at run time. */
  private List<Long> shapeConstants(String shape) {
    Optional<long[]> direct = idx.longs(shape);
    List<Long> out = new ArrayList<>();
    if (direct.isPresent()) {
      for (long v : direct.get()) {
        out.add(v);
      }
      return out;
    }
    Node concat = idx.producer(shape, "Concat").orElse(null);
    if (concat == null) {
      return out;
    }
    for (String part : concat.inputs()) {
      Optional<long[]> c = idx.longs(part);
      if (c.isPresent()) {
        for (long v : c.get()) {
          out.add(v);
        }
      } else {
        out.add(null);
      }
    }
    return out;
  }

  private int tokens(Embedding e, Value image, int patch) throws VitqException {
    if (e.positionEmbedding() != null) {
      List<Long> dims = idx.constant(e.positionEmbedding()).orElseThrow().dims();
      if (dims.size() >= 2) {
        return (int) (long) dims.get(dims.size() - 2);
      }
    }
    Dim h = image.type().shape().get(2);
    Dim w = image.type().shape().get(3);
    if (h.isFixed() && w.isFixed()) {
      return (int) ((h.size() / patch) * (w.size() / patch)) + e.prefixTokens();
    }
    throw missing("neither a position embedding nor a fixed image size tells the number of tokens");
  }
}
