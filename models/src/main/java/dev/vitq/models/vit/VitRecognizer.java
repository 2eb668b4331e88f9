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
    } catch (NotRecognised e) {
      return Recognition.notAVit(source + " is not a transformer encoder vitq recognises: " + e.getMessage() + ".");
    }
  }

  private static NotRecognised missing(String what) {
    return new NotRecognised(what);
  }

  private VitStructure recognize() throws NotRecognised {
    Value image = imageInput();
    Embedding embedding = new EmbeddingMatcher(p).embedding(image.name());
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
    HeadMatcher.HeadParts head = new HeadMatcher(p).head(x, embedding.prefixTokens());
    int heads = heads(blocks.get(0), embedDim);
    int tokens = tokens(embedding, image, patch);
    int imageSize = imageSize(image, tokens - embedding.prefixTokens(), patch);
    int classes = head.head().kind() == Head.Kind.CLASSIFIER ? head.head().linears().get(0).outFeatures() : 0;
    return new VitStructure(image.name(), head.head().output(), embedding, blocks, head.norm(), head.head(),
        embedDim, heads, tokens, imageSize, patch, classes);
  }

  private Value imageInput() throws NotRecognised {
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

  private Attention attention(int i, String h, String out) throws NotRecognised {
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
    String probs = p.skipCasts(softmax.output());
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

  private Mlp mlp(int i, String h, String out) throws NotRecognised {
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

  // ---- sizes -------------------------------------------------------------------------------------------------

  /** Heads: the embedding width over the queries' last dimension, else from a per-head Reshape or the scale. */
  private int heads(Block block, int embedDim) throws NotRecognised {
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

  private int tokens(Embedding e, Value image, int patch) throws NotRecognised {
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
