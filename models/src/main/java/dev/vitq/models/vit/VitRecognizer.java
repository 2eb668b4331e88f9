package dev.vitq.models.vit;

import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import dev.vitq.models.canon.Shapes;
import dev.vitq.models.vit.VitStructure.Attention;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Embedding;
import dev.vitq.models.vit.VitStructure.Activation;
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
 * Finds the transformer encoder in a canonical graph (see {@link dev.vitq.models.canon.Canonicalizer}): the patch
 * embedding on the image input, then block after block along the residual stream (what lies between two residual
 * adds: a norm and a token mixer, then a norm and a channel MLP), then whatever the model outputs.
 *
 * <p>It recognises roles, not a template or a spelling: layer norm or RMS norm as the operator or spelled out;
 * attention with q/k/v fused (split by Split, Slice or Gather, before or after the heads are split) or separate, with
 * or without biases, rotary position embedding, q/k norms and LayerScale; heads split by Reshape and Transpose in any
 * order, batch-first or not; an MLP with GELU in any spelling, QuickGELU, SiLU or ReLU, or gated (SwiGLU, GeGLU:
 * {@code act(gate) * up}, the two as separate layers or one), with a norm inside or not; linear layers as Gemm or
 * MatMul+Add; class, distillation and register tokens; a norm before the blocks (CLIP). After the blocks: the tokens
 * themselves (a headless encoder), class-token, mean or attention pooling (SigLIP's MAP head), with the final norm
 * before or after it, then nothing more, a projection (CLIP) or one classifier or two averaged (distilled DeiT). What
 * it cannot find, it names.
 *
 * {@snippet lang="java" :
 * Recognition r = VitRecognizer.recognize(canonical, "vit.onnx");
 * if (r.recognised()) { int depth = r.vit().blocks().size(); }
 * }
 */
public final class VitRecognizer {
  /** Operators that move elements without computing: skipped between the parts of a layer. */
  static final Set<String> LAYOUT =
      Set.of("Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Squeeze", "Unsqueeze");

  private final Patterns p;
  private final GraphIndex idx;
  private final Shapes shapes;
  private final String source;
  /** The token width from the patch embedding, for values whose shape inference could not tell. */
  private long tokenWidth = -1;

  private VitRecognizer(Model model, String source) {
    this.idx = GraphIndex.of(model.graph());
    this.p = new Patterns(idx);
    this.shapes = Shapes.of(model.graph());
    this.source = source;
  }

  /**
   * Recognises the ViT structure of a (canonical) model.
   *
   * @param source the model's file name, for the reason
   */
  public static Recognition recognize(Model model, String source) {
    try {
      return Recognition.of(new VitRecognizer(model, source).recognize());
    } catch (NotAVit e) {
      return Recognition.notAVit(source + " is not a transformer encoder vitq recognises: " + e.getMessage() + ".");
    }
  }

  /** Why a graph is not a ViT; caught in {@link #recognize}. */
  private static final class NotAVit extends Exception {
    NotAVit(String message) {
      super(message, null, false, false);
    }
  }

  private static NotAVit missing(String what) {
    return new NotAVit(what);
  }

  private VitStructure recognize() throws NotAVit {
    Value image = imageInput();
    Embedding embedding = embedding(image.name());
    Tensor convWeight = idx.constant(embedding.weight()).orElseThrow();
    int embedDim = (int) (long) convWeight.dims().get(0);
    tokenWidth = embedDim;
    int patch = (int) (long) convWeight.dims().get(2);

    List<Block> blocks = new ArrayList<>();
    String x = embedding.output();
    while (true) {
      int i = blocks.size();
      Node residual1 = residualAdd(x);
      if (residual1 == null) {
        break;
      }
      Norm norm1 = p.normFrom(x).orElseThrow(() -> missing("block " + i + " has no layer norm before attention"));
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
      throw missing("no transformer block (layer norm, attention and residual add) follows the patch embedding");
    }
    HeadParts head = head(x, embedding.prefixTokens());
    int heads = heads(blocks.get(0), embedDim);
    int tokens = tokens(embedding, image, patch);
    int imageSize = imageSize(image, tokens - embedding.prefixTokens(), patch);
    int classes = head.head().kind() == Head.Kind.CLASSIFIER ? head.head().linears().get(0).outFeatures() : 0;
    return new VitStructure(image.name(), head.head().output(), embedding, blocks, head.norm(), head.head(),
        embedDim, heads, tokens, imageSize, patch, classes);
  }

  private Value imageInput() throws NotAVit {
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

  // ---- embedding ---------------------------------------------------------------------------------------------

  private Embedding embedding(String image) throws NotAVit {
    Node conv = patchConv(image);
    Tensor weight = idx.constant(conv.input(1)).orElseThrow();
    if (!isFloat(weight.dtype())) {
      throw missing("the patch embedding's weight holds " + weight.dtype() + ", not floating point");
    }
    long width = weight.dims().get(0);
    String x = conv.output();
    for (List<Node> cs = p.dataConsumers(x); cs.size() == 1 && LAYOUT.contains(cs.get(0).opType());
        cs = p.dataConsumers(x)) {
      x = cs.get(0).output();
    }
    String classToken = null;
    String pos = null;
    Norm preNorm = null;
    int prefix = 0;
    for (int step = 0; step < 6; step++) {
      List<Node> cs = p.dataConsumers(x);
      Optional<Norm> norm = p.normFrom(x);
      if (norm.isPresent() && cs.stream().allMatch(c -> norm.get().nodes().contains(c.output()))) {
        // The stream's only reader is a norm: a norm before the blocks (CLIP's pre-norm), not a block's norm1.
        preNorm = norm.get();
        x = preNorm.output();
        continue;
      }
      Optional<Node> inserted = tokensInserted(x, cs, width);
      if (inserted.isPresent()) {
        // Hugging Face's Dinov2WithRegisters: x[:, :1], the registers, x[:, 1:] concatenated after the position add.
        for (String in : inserted.get().inputs()) {
          Optional<PrefixTokens> t = prefixTokens(in, width);
          if (t.isPresent()) {
            prefix += t.get().count();
          }
        }
        x = inserted.get().output();
        continue;
      }
      if (cs.size() != 1) {
        break;
      }
      Node c = cs.get(0);
      if (c.is("Concat") && c.inputs().size() >= 2) {
        int at = c.inputs().indexOf(x);
        for (int k = 0; k < c.inputs().size(); k++) {
          if (k == at) {
            continue;
          }
          if (k > at) {
            throw missing("tokens are appended after the patch tokens, which vitq does not know");
          }
          Optional<PrefixTokens> t = prefixTokens(c.input(k), width);
          if (t.isEmpty()) {
            throw missing("the patch tokens are concatenated with something other than learned tokens");
          }
          classToken = classToken == null ? t.get().tensor() : classToken;
          prefix += t.get().count();
        }
      } else if (c.is("Add") && Patterns.other(c, x) != null && !dependsOnInput(Patterns.other(c, x))) {
        // A learned position embedding, or one computed from constants only (an interpolation to the same grid).
        pos = Patterns.other(c, x);
      } else {
        break;
      }
      x = c.output();
    }
    return new Embedding(conv.output(), conv.input(0), conv.input(1), conv.input(2).isEmpty() ? null : conv.input(2),
        classToken, pos, preNorm, x, prefix);
  }

  /**
   * The Concat that puts learned tokens between the leading and trailing tokens of {@code x} (Slices of it on the
   * token axis), or empty.
   */
  private Optional<Node> tokensInserted(String x, List<Node> consumers, long width) {
    if (consumers.size() < 2 || !consumers.stream().allMatch(n -> n.is("Slice") && n.input(0).equals(x))) {
      return Optional.empty();
    }
    Node concat = null;
    for (Node slice : consumers) {
      List<Node> next = p.dataConsumers(slice.output());
      if (next.size() != 1 || !next.get(0).is("Concat") || (concat != null && next.get(0) != concat)) {
        return Optional.empty();
      }
      concat = next.get(0);
    }
    int learned = 0;
    for (String in : concat.inputs()) {
      boolean slice = consumers.stream().anyMatch(n -> n.output().equals(in));
      if (!slice && prefixTokens(in, width).isEmpty()) {
        return Optional.empty();
      }
      learned += slice ? 0 : 1;
    }
    long axis = concat.intAttr("axis", 0);
    return learned > 0 && (axis == 1 || axis == -2) ? Optional.of(concat) : Optional.empty();
  }

  /** Whether {@code v} depends on a graph input that is not an initializer (the image). */
  private boolean dependsOnInput(String v) {
    Set<String> seen = new HashSet<>();
    ArrayDeque<String> work = new ArrayDeque<>(List.of(v));
    while (!work.isEmpty()) {
      String cur = work.pop();
      if (cur.isEmpty() || !seen.add(cur)) {
        continue;
      }
      Optional<Node> n = idx.producer(cur);
      if (n.isEmpty()) {
        if (idx.graph().input(cur).isPresent() && idx.initializer(cur).isEmpty()) {
          return true;
        }
        continue;
      }
      n.get().inputs().forEach(work::push);
    }
    return false;
  }

  /** The patch convolution: a Conv on the image, or on the image after an in-graph normalisation. */
  private Node patchConv(String image) throws NotAVit {
    String v = image;
    for (int step = 0; step < 4; step++) {
      List<Node> cs = p.dataConsumers(v);
      for (Node c : cs) {
        if (c.is("Conv") && c.input(0).equals(v) && idx.constant(c.input(1)).filter(t -> t.rank() == 4).isPresent()) {
          return c;
        }
      }
      if (cs.size() != 1 || !(cs.get(0).is("Sub") || cs.get(0).is("Div") || cs.get(0).is("Mul")
          || cs.get(0).is("Add") || cs.get(0).is("Cast")) || !constantsBesides(cs.get(0), v)) {
        break;
      }
      v = cs.get(0).output();
    }
    throw missing("no patch embedding (a Conv on the image input) was found");
  }

  private boolean constantsBesides(Node n, String v) {
    return n.inputs().stream().allMatch(in -> in.equals(v) || in.isEmpty() || idx.isConstant(in));
  }

  /** A learned token tensor concatenated before the patches, and how many tokens it holds. */
  private record PrefixTokens(String tensor, int count) {}

  /** The constant behind an Expand/Tile/Reshape/Unsqueeze of learned tokens [1, k, width] (or [width]). */
  private Optional<PrefixTokens> prefixTokens(String value, long width) {
    String v = value;
    for (int i = 0; i < 6; i++) {
      Optional<Tensor> t = idx.constant(v);
      if (t.isPresent()) {
        long n = t.get().elementCount();
        boolean tokens = !t.get().dims().isEmpty() && t.get().dims().get(t.get().rank() - 1) == width
            && n % width == 0 && n > 0;
        return tokens ? Optional.of(new PrefixTokens(v, (int) (n / width))) : Optional.empty();
      }
      Node n = idx.producer(v).orElse(null);
      if (n == null || !(n.is("Expand") || n.is("Tile") || LAYOUT.contains(n.opType()) || n.is("Cast"))) {
        return Optional.empty();
      }
      v = n.input(0);
    }
    return Optional.empty();
  }

  static boolean isFloat(DType t) {
    return t == DType.FLOAT || t == DType.FLOAT16 || t == DType.BFLOAT16 || t == DType.DOUBLE;
  }

  // ---- blocks ------------------------------------------------------------------------------------------------

  /** The residual Add reading the stream {@code x} and a computed branch, or null. */
  private Node residualAdd(String x) {
    for (Node c : p.dataConsumers(x)) {
      if (c.is("Add") && Patterns.other(c, x) != null && !idx.isConstant(Patterns.other(c, x))) {
        return c;
      }
    }
    return null;
  }

  /** A residual branch traced back to the linear layer that computes it, past layout changes and LayerScale. */
  private record Branch(Linear linear, String layerScale) {}

  private Optional<Branch> branch(String out, long width) {
    String v = out;
    String gamma = null;
    for (int step = 0; step < 6; step++) {
      Optional<Linear> l = p.linearProducing(v);
      if (l.isPresent()) {
        return Optional.of(new Branch(l.get(), gamma));
      }
      Node n = idx.producer(v).orElse(null);
      if (n == null) {
        break;
      }
      if (LAYOUT.contains(n.opType())) {
        v = n.input(0);
      } else if (n.is("Mul") && gamma == null && layerScale(n, width) != null) {
        gamma = layerScale(n, width);
        v = Patterns.other(n, gamma);
      } else {
        break;
      }
    }
    return Optional.empty();
  }

  /** The per-channel gamma constant of a LayerScale multiplication, or null. */
  private String layerScale(Node mul, long width) {
    for (String in : mul.inputs()) {
      Optional<Tensor> t = idx.constant(in);
      if (t.isPresent() && t.get().elementCount() == width && width > 1 && Patterns.other(mul, in) != null
          && !idx.isConstant(Patterns.other(mul, in))) {
        return in;
      }
    }
    return null;
  }

  private Attention attention(int i, String h, String out) throws NotAVit {
    long width = streamWidth(h);
    Branch branch = branch(out, width)
        .orElseThrow(() -> missing("block " + i + " has no output projection before its residual add"));
    Linear proj = branch.linear();
    Set<String> region = between(h, proj.input());
    List<Node> softmaxes = region.stream().map(v -> idx.producer(v).orElseThrow()).filter(n -> n.is("Softmax"))
        .toList();
    if (softmaxes.size() != 1) {
      throw missing("block " + i + " has " + softmaxes.size() + " softmax nodes in its attention, not 1");
    }
    Node softmax = softmaxes.get(0);
    String probs = skipCasts(softmax.output());
    Node context = null;
    for (Node c : p.dataConsumers(probs)) {
      if (c.is("MatMul") && c.input(0).equals(probs) && region.contains(c.output())) {
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
      } else if (n.is("Mul") || n.is("Div") || n.is("Add") || n.is("Cast") || n.is("Where") || n.is("Sub")) {
        s = n.is("Where") ? n.input(2) : idx.isConstant(n.input(0)) ? n.input(1) : n.input(0);
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
    boolean rotary = false;
    boolean qkNorm = false;
    for (String v : between(h, scores.output())) {
      Node n = idx.producer(v).orElseThrow();
      rotary |= n.is("Neg") || n.is("Sin") || n.is("Cos") || n.is("RotaryEmbedding");
      qkNorm |= n.is("LayerNormalization") || n.is("RMSNormalization") || n.is("ReduceMean")
          || n.opType().equals("SimplifiedLayerNormalization");
    }
    return new Attention(projections, scores.input(0), scores.input(1), scores.output(), softmax.output(), probs,
        context.input(1), context.output(), proj, branch.layerScale(), out, rotary, qkNorm);
  }

  /** The last dimension of a value, or -1. */
  private long widthOf(String v) {
    return shapes.dims(v).filter(d -> d.length > 0).map(d -> d[d.length - 1]).orElse(-1L);
  }

  /** The width of the residual stream {@code h} is read from: its shape, else the patch embedding's. */
  private long streamWidth(String h) {
    long w = widthOf(h);
    return w > 0 ? w : tokenWidth;
  }

  /** Follows single Cast consumers. */
  private String skipCasts(String v) {
    String cur = v;
    for (int i = 0; i < 3; i++) {
      List<Node> cs = p.dataConsumers(cur);
      if (cs.size() == 1 && (cs.get(0).is("Cast") || cs.get(0).is("Dropout") || cs.get(0).is("Identity"))) {
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

  private Mlp mlp(int i, String h, String out) throws NotAVit {
    Branch branch = branch(out, streamWidth(h))
        .orElseThrow(() -> missing("block " + i + " has no linear layer ending its MLP"));
    Linear fc2 = branch.linear();
    List<Linear> ins = p.linearsFrom(h);
    if (ins.isEmpty()) {
      throw missing("block " + i + " has no linear layer after its second norm");
    }
    Linear fc1 = null;
    Linear gate = null;
    Activation act = null;
    String hidden = null;
    if (ins.size() == 2) {
      // A gated MLP with separate layers: act(gate) * up.
      for (int g = 0; g < 2 && act == null; g++) {
        Optional<Activation> a = p.activationFrom(ins.get(g).output());
        String product = a.isEmpty() ? null : product(a.get().output(), ins.get(1 - g).output());
        if (product != null) {
          gate = ins.get(g);
          fc1 = ins.get(1 - g);
          act = a.get();
          hidden = product;
        }
      }
    } else if (ins.size() == 1) {
      fc1 = ins.get(0);
      Optional<Activation> a = p.activationFrom(fc1.output());
      if (a.isPresent()) {
        act = a.get();
        hidden = act.output();
      } else {
        // Gate and up fused in one layer, then split in two halves (chunk): act(one half) * the other.
        for (Node part : p.dataConsumers(fc1.output())) {
          for (String half : part.outputs()) {
            Optional<Activation> ah = (part.is("Split") || part.is("Slice") || part.is("Gather"))
                ? p.activationFrom(half) : Optional.empty();
            String product = ah.isEmpty() ? null : productWithSibling(ah.get().output(), fc1.output(), half);
            if (product != null && act == null) {
              act = ah.get();
              hidden = product;
            }
          }
        }
      }
    }
    if (act == null) {
      throw missing("block " + i + "'s MLP has no activation (GELU, SiLU or ReLU, gated or not) after fc1");
    }
    String reads = skipLayoutBack(fc2.input());
    Norm inner = null;
    if (!reads.equals(hidden)) {
      inner = p.normFrom(hidden).filter(n -> n.output().equals(reads)).orElse(null);
      if (inner == null) {
        throw missing("block " + i + "'s MLP is not fc1, activation, fc2 in a row");
      }
    }
    return new Mlp(fc1, gate, act, hidden, inner, fc2, branch.layerScale(), out);
  }

  /** The Mul of {@code a} and {@code b} (the gated product), or null. */
  private String product(String a, String b) {
    for (Node c : p.dataConsumers(a)) {
      if (c.is("Mul") && b.equals(Patterns.other(c, a))) {
        return c.output();
      }
    }
    return null;
  }

  /** The Mul of {@code a} and another half of {@code fused} than {@code half}, or null. */
  private String productWithSibling(String a, String fused, String half) {
    for (Node c : p.dataConsumers(a)) {
      String o = c.is("Mul") ? Patterns.other(c, a) : null;
      Node sibling = o == null ? null : idx.producer(o).orElse(null);
      if (sibling != null && !o.equals(half) && sibling.input(0).equals(fused)) {
        return c.output();
      }
    }
    return null;
  }

  /** Follows a value back through layout changes to what computed it. */
  private String skipLayoutBack(String v) {
    String cur = v;
    for (int i = 0; i < 4; i++) {
      Node n = idx.producer(cur).orElse(null);
      if (n == null || !LAYOUT.contains(n.opType())) {
        break;
      }
      cur = n.input(0);
    }
    return cur;
  }

  // ---- head --------------------------------------------------------------------------------------------------

  /** The head and the final norm (or null), which may come before or after the pooling. */
  private record HeadParts(Norm norm, Head head) {}

  private HeadParts head(String x, int prefix) throws NotAVit {
    Optional<Norm> sequenceNorm = p.normFrom(x);
    String f = sequenceNorm.map(Norm::output).orElse(x);
    List<Pooled> pooled = new ArrayList<>();
    for (Node c : p.dataConsumers(f)) {
      Pooled pl = pooling(c, f, prefix);
      if (pl != null) {
        pooled.add(pl);
      }
    }
    List<Linear> poolLinears = List.of();
    if (pooled.isEmpty()) {
      Optional<AttentionPool> pool = attentionPool(f);
      if (pool.isPresent()) {
        pooled.add(new Pooled(Head.Pooling.ATTENTION, pool.get().value()));
        poolLinears = pool.get().linears();
      }
    }
    String tokensOut = skipCasts(f);
    if (pooled.isEmpty()) {
      if (idx.isGraphOutput(tokensOut)) {
        return new HeadParts(sequenceNorm.orElse(null), new Head(Head.Pooling.NONE, List.of(), List.of(), tokensOut));
      }
      throw missing(sequenceNorm.isPresent()
          ? "the final norm is followed by no class-token, mean or attention pooling, and is not a model output"
          : "the last block is followed by no final norm, pooling or model output");
    }
    if (pooled.size() > 2 || pooled.stream().map(Pooled::kind).distinct().count() > 1) {
      throw missing("the tokens are pooled " + pooled.size() + " ways, which vitq does not know");
    }
    Norm norm = sequenceNorm.orElse(null);
    List<Linear> linears = new ArrayList<>();
    String end = null;
    for (Pooled pl : pooled) {
      String v = pl.value();
      if (sequenceNorm.isEmpty()) {
        Optional<Norm> after = p.normFrom(v);
        if (after.isPresent() && pooled.size() == 1) {
          norm = after.get();
          v = norm.output();
        } else if (pooled.size() != 1) {
          throw missing("the pooled tokens are not normalised before the classifiers");
        }
      }
      Optional<Linear> l = p.linearFrom(v);
      l.ifPresent(linears::add);
      end = l.map(Linear::output).orElse(v);
    }
    String output;
    if (pooled.size() == 2) {
      if (linears.size() != 2) {
        throw missing("the two pooled tokens are not read by two classifiers");
      }
      output = averaged(linears.get(0).output(), linears.get(1).output());
    } else {
      output = end;
    }
    if (!idx.isGraphOutput(output)) {
      if (linears.isEmpty() && idx.isGraphOutput(tokensOut)) {
        return new HeadParts(sequenceNorm.orElse(null), new Head(Head.Pooling.NONE, List.of(), List.of(), tokensOut));
      }
      throw missing(linears.isEmpty() ? "the pooled embedding is not a model output"
          : "the classification layer's output is not a model output");
    }
    return new HeadParts(norm, new Head(pooled.get(0).kind(), poolLinears, linears, output));
  }

  /** An attention pool's output (one vector per image) and its linear layers in graph order. */
  private record AttentionPool(String value, List<Linear> linears) {}

  /**
   * Attention pooling (SigLIP's MAP head): on the way from the tokens {@code f} to a model output, one softmax, and
   * after it a pick of the one pooled token (or a mean), which is the pooled vector.
   */
  private Optional<AttentionPool> attentionPool(String f) {
    for (Value o : idx.graph().outputs()) {
      Set<String> region = dataAncestors(f, o.name());
      if (!region.contains(o.name()) && !o.name().equals(f)) {
        continue;
      }
      List<Node> inOrder = idx.graph().nodes().stream().filter(n -> !n.outputs().isEmpty()
          && region.contains(n.output())).toList();
      for (Node pick : inOrder) {
        String pickInput = pick.is("Slice") ? null : pick.input(0);
        Pooled pl = pick.is("Gather") || pick.is("ReduceMean") ? pooling(pick, pick.input(0), 1) : null;
        if (pl == null || pickInput == null) {
          continue;
        }
        Set<String> before = dataAncestors(f, pl.value());
        long softmaxes = before.stream().filter(v -> idx.producer(v).orElseThrow().is("Softmax")).count();
        if (softmaxes != 1) {
          continue;
        }
        List<Linear> linears = new ArrayList<>();
        for (Node n : idx.graph().nodes()) {
          if ((n.is("MatMul") || n.is("Gemm")) && before.contains(n.output())) {
            p.linearAt(n).ifPresent(linears::add);
          }
        }
        return Optional.of(new AttentionPool(pl.value(), linears));
      }
    }
    return Optional.empty();
  }

  /**
   * Values computed on the way from {@code from} to {@code to} that depend on {@code from}: {@code to}'s ancestors
   * that are {@code from}'s descendants, not counting reads of a shape.
   */
  private Set<String> dataAncestors(String from, String to) {
    Set<String> descendants = new HashSet<>();
    ArrayDeque<String> work = new ArrayDeque<>(List.of(from));
    while (!work.isEmpty()) {
      String v = work.pop();
      for (Node c : p.dataConsumers(v)) {
        for (String out : c.outputs()) {
          if (descendants.add(out)) {
            work.push(out);
          }
        }
      }
    }
    Set<String> region = new HashSet<>();
    work.push(to);
    while (!work.isEmpty()) {
      String v = work.pop();
      if (!descendants.contains(v) || !region.add(v)) {
        continue;
      }
      idx.producer(v).ifPresent(n -> n.inputs().stream().filter(in -> !in.isEmpty()).forEach(work::push));
    }
    return region;
  }

  /** One way the token sequence becomes a vector: a token picked, or the mean over tokens. */
  private record Pooled(Head.Pooling kind, String value) {}

  private Pooled pooling(Node c, String f, int prefix) {
    if (c.is("Gather") && c.input(0).equals(f) && (c.intAttr("axis", 0) == 1 || c.intAttr("axis", 0) == -2)
        && idx.longs(c.input(1)).filter(v -> v.length == 1 && v[0] >= 0 && v[0] < Math.max(1, prefix)).isPresent()
        && idx.constant(c.input(1)).orElseThrow().rank() == 0) {
      return new Pooled(Head.Pooling.CLASS_TOKEN, c.output());
    }
    if (c.is("Slice") && c.input(0).equals(f) && axisOne(c.input(3))) {
      long start = idx.longs(c.input(1)).filter(v -> v.length == 1).map(v -> v[0]).orElse(-1L);
      long end = idx.longs(c.input(2)).filter(v -> v.length == 1).map(v -> v[0]).orElse(-1L);
      Node next = p.dataConsumers(c.output()).stream().findFirst().orElse(null);
      if (next == null || p.dataConsumers(c.output()).size() != 1) {
        return null;
      }
      if (start >= 0 && start < Math.max(1, prefix) && end == start + 1
          && (next.is("Squeeze") || next.is("Reshape") || next.is("Flatten"))) {
        return new Pooled(Head.Pooling.CLASS_TOKEN, next.output());
      }
      if (start >= 0 && start == prefix && end > start && next.is("ReduceMean") && reducesAxisOne(next)) {
        return new Pooled(Head.Pooling.MEAN, next.output());
      }
      return null;
    }
    if (c.is("ReduceMean") && c.input(0).equals(f) && reducesAxisOne(c)) {
      return new Pooled(Head.Pooling.MEAN, c.output());
    }
    return null;
  }

  private boolean axisOne(String axes) {
    return axes.isEmpty() ? false : idx.longs(axes).filter(v -> v.length == 1 && (v[0] == 1 || v[0] == -2))
        .isPresent();
  }

  private boolean reducesAxisOne(Node mean) {
    Optional<List<Long>> attr = mean.intsAttr("axes");
    boolean one = attr.isPresent() ? attr.get().size() == 1 && (attr.get().get(0) == 1 || attr.get().get(0) == -2)
        : axisOne(mean.input(1));
    return one && mean.intAttr("keepdims", 1) == 0;
  }

  /** The value {@code (a + b) / 2} of two classifier outputs (DeiT's distilled head), or "" when not so. */
  private String averaged(String a, String b) throws NotAVit {
    Node add = p.dataConsumers(a).stream().filter(n -> n.is("Add") && b.equals(Patterns.other(n, a))).findFirst()
        .orElseThrow(() -> missing("the two classifiers' outputs are not averaged"));
    List<Node> cs = p.dataConsumers(add.output());
    if (cs.size() == 1) {
      Node half = cs.get(0);
      String c = Patterns.other(half, add.output());
      Optional<Float> k = c == null ? Optional.empty() : idx.scalar(c);
      if (k.isPresent() && ((half.is("Div") && k.get() == 2f) || (half.is("Mul") && k.get() == 0.5f))) {
        return half.output();
      }
    }
    throw missing("the two classifiers' outputs are not averaged");
  }

  // ---- sizes -------------------------------------------------------------------------------------------------

  /** Heads: the embedding width over the queries' last dimension, else from a per-head Reshape or the scale. */
  private int heads(Block block, int embedDim) throws NotAVit {
    long headDim = widthOf(block.attention().query());
    if (headDim > 0 && embedDim % headDim == 0) {
      return (int) (embedDim / headDim);
    }
    for (String v : between(block.norm1().output(), block.attention().softmax())) {
      Node n = idx.producer(v).orElseThrow();
      if ((n.is("Mul") || n.is("Div")) && n.inputs().size() == 2) {
        Optional<Float> c = idx.scalar(n.input(1)).or(() -> idx.scalar(n.input(0)));
        if (c.isPresent() && c.get() > 0) {
          double hd = n.is("Mul") ? 1 / (c.get() * c.get()) : c.get() * c.get();
          long rounded = Math.round(hd);
          if (Math.abs(hd - rounded) < 1e-2 * rounded && rounded > 0 && embedDim % rounded == 0) {
            return (int) (embedDim / rounded);
          }
        }
      }
    }
    throw missing("the number of attention heads cannot be told from block 0");
  }

  private int tokens(Embedding e, Value image, int patch) throws NotAVit {
    long fromShape = shapes.dims(e.output()).filter(d -> d.length == 3).map(d -> d[1]).orElse(-1L);
    if (fromShape > 0) {
      return (int) fromShape;
    }
    if (e.positionEmbedding() != null && idx.constant(e.positionEmbedding()).isPresent()) {
      List<Long> dims = idx.constant(e.positionEmbedding()).orElseThrow().dims();
      if (dims.size() >= 2) {
        long n = dims.get(dims.size() - 2);
        // A position embedding may cover the patches only (timm's register models add it before the prefix).
        return (int) (patchesFromImage(image, patch) == n ? n + e.prefixTokens() : n);
      }
    }
    long patches = patchesFromImage(image, patch);
    if (patches > 0) {
      return (int) patches + e.prefixTokens();
    }
    throw missing("neither the shapes, a position embedding nor a fixed image size tells the number of tokens");
  }

  private static long patchesFromImage(Value image, int patch) {
    Dim h = image.type().shape().get(2);
    Dim w = image.type().shape().get(3);
    return h.isFixed() && w.isFixed() ? (h.size() / patch) * (w.size() / patch) : -1;
  }

  private static int imageSize(Value image, int patches, int patch) {
    Dim h = image.type().shape().get(2);
    return h.isFixed() ? (int) h.size() : (int) Math.round(Math.sqrt(patches)) * patch;
  }
}
