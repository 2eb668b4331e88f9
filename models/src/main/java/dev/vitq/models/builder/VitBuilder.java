package dev.vitq.models.builder;

import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Metadata;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * Writes ViT classifiers and other transformer encoders (see {@link EncoderFeatures}) of a given shape and spelling
 * with seeded random weights: the models unit tests, examples and scaling benchmarks run on. The same config,
 * spelling, features and seed give the same model, byte for byte.
 *
 * <p>Inputs are {@code pixel_values} float32 [batch, channels, size, size]; the output is {@code logits} float32
 * [batch, classes] for a classifier, {@code embedding} [batch, width] for a pooled encoder, {@code last_hidden_state}
 * [batch, tokens, width] for one that outputs its tokens. The {@code preprocess} metadata says: scale 1/255, mean
 * and std 0.5.
 *
 * {@snippet lang="java" :
 * Model vit = VitBuilder.build(VitConfig.tiny(32, 4, 10), Spelling.TIMM_17, 42);
 * }
 */
public final class VitBuilder {
  /** The image input's name. */
  public static final String INPUT = "pixel_values";
  /** The logits output's name. */
  public static final String OUTPUT = "logits";
  /** The pooled embedding's name, for encoders without a classifier. */
  public static final String EMBEDDING = "embedding";
  /** The tokens output's name, for encoders that output their tokens. */
  public static final String TOKENS = "last_hidden_state";

  private final VitConfig c;
  private final Spelling s;
  private final EncoderFeatures f;
  private final Random rng;
  private final GraphBuilder b = GraphBuilder.empty();

  private VitBuilder(VitConfig config, Spelling spelling, EncoderFeatures features, long seed) {
    this.c = config;
    this.s = spelling;
    this.f = features;
    this.rng = new Random(seed);
    if (features.rotary() && (spelling.qkv == Spelling.Qkv.SEPARATE_SDPA || config.headDim() % 2 != 0)) {
      throw new IllegalArgumentException("A rotary embedding needs an even head width and a spelling other than "
          + spelling.cliName() + ".");
    }
  }

  /** Builds a ViT classifier. */
  public static Model build(VitConfig config, Spelling spelling, long seed) {
    return build(config, spelling, EncoderFeatures.CLASSIFIER, seed);
  }

  /** Builds an encoder with the given features. */
  public static Model build(VitConfig config, Spelling spelling, EncoderFeatures features, long seed) {
    return new VitBuilder(config, spelling, features, seed).model();
  }

  /** The name of the model's output. */
  private String outputName() {
    return switch (f.output()) {
      case CLASSIFIER -> OUTPUT;
      case POOLED, ATTENTION_POOL -> EMBEDDING;
      case TOKENS -> TOKENS;
    };
  }

  private Value outputValue() {
    return switch (f.output()) {
      case CLASSIFIER -> Value.of(OUTPUT, TensorType.of(DType.FLOAT, "batch", c.classes()));
      case POOLED, ATTENTION_POOL -> Value.of(EMBEDDING, TensorType.of(DType.FLOAT, "batch", c.embedDim()));
      case TOKENS -> Value.of(TOKENS, TensorType.of(DType.FLOAT, "batch", c.patches() + f.prefixTokens(),
          c.embedDim()));
    };
  }

  private Model model() {
    b.reserve(INPUT);
    b.reserve(outputName());
    String x = patchEmbedding();
    for (int i = 0; i < c.depth(); i++) {
      x = block(i, x);
    }
    head(x);
    Graph graph =
        new Graph(
            "vit",
            b.nodes(),
            List.of(Value.of(INPUT, TensorType.of(DType.FLOAT, "batch", c.channels(), c.imageSize(), c.imageSize()))),
            List.of(outputValue()),
            b.initializers(),
            List.of(),
            Blob.EMPTY);
    long ir = s.opset >= 19 ? 9 : s.opset >= 15 ? 8 : 7;
    return new Model(ir, List.of(new OpsetId("", s.opset)), "vitq-builder", "1", "", 0,
        "A ViT with random weights, spelled " + s.cliName() + ".", List.of(new Metadata("preprocess", preprocess())),
        graph, Blob.EMPTY);
  }

  private String preprocess() {
    String labels = IntStream.range(0, c.classes()).mapToObj(i -> "\"class" + i + "\"")
        .collect(Collectors.joining(", "));
    return "{\"image_size\": [" + c.imageSize() + ", " + c.imageSize() + "], \"layout\": \"NCHW\", \"scale\": "
        + (1.0 / 255) + ", \"mean\": [0.5, 0.5, 0.5], \"std\": [0.5, 0.5, 0.5]"
        + (f.output() == EncoderFeatures.Output.CLASSIFIER ? ", \"labels\": [" + labels + "]" : "") + "}";
  }

  // ---- embedding ---------------------------------------------------------------------------------------------

  private String patchEmbedding() {
    b.scope("patch_embed");
    int p = c.patchSize();
    int d = c.embedDim();
    String w = b.initializer("patch_embed.proj.weight", normal(List.of((long) d, (long) c.channels(), (long) p,
        (long) p), 1.0 / Math.sqrt(c.channels() * p * p)));
    String bias = b.initializer("patch_embed.proj.bias", normal(List.of((long) d), 0.02));
    String conv = b.op("Conv", List.of(INPUT, w, bias), Attribute.ofInts("kernel_shape", p, p),
        Attribute.ofInts("strides", p, p), Attribute.ofInts("pads", 0, 0, 0, 0));
    String flat = b.op("Reshape", List.of(conv, b.longs(0, d, -1)));
    String tokens = b.op("Transpose", List.of(flat), Attribute.ofInts("perm", 0, 2, 1));
    b.scope("");
    String cls = b.initializer("cls_token", normal(List.of(1L, 1L, (long) d), 0.02));
    String pos = b.initializer("pos_embed", normal(List.of(1L, (long) c.patches() + f.prefixTokens(), (long) d),
        0.02));
    String batch = b.op("Slice", List.of(b.op("Shape", List.of(INPUT)), b.longs(0), b.longs(1)));
    String expandShape = b.op("Concat", List.of(batch, b.longs(1, 1)), Attribute.of("axis", 0L));
    String clsTokens = b.op("Expand", List.of(cls, expandShape));
    List<String> parts = new ArrayList<>(List.of(clsTokens));
    if (f.registers() > 0) {
      String reg = b.initializer("reg_token", normal(List.of(1L, (long) f.registers(), (long) d), 0.02));
      parts.add(b.op("Expand", List.of(reg, b.op("Concat", List.of(batch, b.longs(1, 1)), Attribute.of("axis", 0L)))));
    }
    parts.add(tokens);
    String seq = b.op("Concat", parts, Attribute.of("axis", 1L));
    return b.op("Add", List.of(seq, pos));
  }

  // ---- blocks ------------------------------------------------------------------------------------------------

  private String block(int i, String x) {
    String prefix = "blocks." + i;
    b.scope(prefix + "/norm1");
    String h = layerNorm(prefix + ".norm1", x);
    String a = attention(prefix, h);
    b.scope(prefix);
    a = layerScale(prefix + ".ls1", a);
    x = b.op("Add", List.of(x, a));
    b.scope(prefix + "/norm2");
    h = layerNorm(prefix + ".norm2", x);
    String m = mlp(prefix + ".mlp", prefix + "/mlp", h, f.mlp());
    b.scope(prefix);
    m = layerScale(prefix + ".ls2", m);
    return b.op("Add", List.of(x, m));
  }

  private String mlp(String name, String scope, String h, EncoderFeatures.Mlp kind) {
    String m;
    if (kind == EncoderFeatures.Mlp.SWIGLU) {
      b.scope(scope + "/fc1_g");
      String gate = linear(name + ".fc1_g", h, c.embedDim(), c.mlpDim());
      b.scope(scope + "/fc1_x");
      String up = linear(name + ".fc1_x", h, c.embedDim(), c.mlpDim());
      b.scope(scope + "/act");
      String silu = b.op("Mul", List.of(gate, b.op("Sigmoid", List.of(gate))));
      m = b.op("Mul", List.of(silu, up));
    } else {
      b.scope(scope + "/fc1");
      m = linear(name + ".fc1", h, c.embedDim(), c.mlpDim());
      b.scope(scope + "/act");
      m = gelu(m);
    }
    b.scope(scope + "/fc2");
    return linear(name + ".fc2", m, c.mlpDim(), c.embedDim());
  }

  /** The branch times a per-channel gamma around 0.1 (LayerScale), when the features ask for it. */
  private String layerScale(String name, String branch) {
    if (!f.layerScale()) {
      return branch;
    }
    float[] g = new float[c.embedDim()];
    for (int i = 0; i < g.length; i++) {
      g[i] = (float) (0.1 * (1 + 0.2 * rng.nextGaussian()));
    }
    String gamma = b.initializer(name + ".gamma", Tensor.ofFloats("", List.of((long) g.length), g));
    return b.op("Mul", List.of(branch, gamma));
  }

  /**
   * The rotary embedding of [batch, heads, tokens, headDim] queries or keys: {@code x cos + rotate_half(x) sin},
   * where rotate_half swaps the halves of the head width and negates the second.
   */
  private String rotary(String x) {
    int n = c.patches() + f.prefixTokens();
    int hd = c.headDim();
    float[] cos = new float[n * hd];
    float[] sin = new float[n * hd];
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < hd / 2; j++) {
        double angle = t / Math.pow(10000, 2.0 * j / hd);
        cos[t * hd + j] = cos[t * hd + j + hd / 2] = (float) Math.cos(angle);
        sin[t * hd + j] = sin[t * hd + j + hd / 2] = (float) Math.sin(angle);
      }
    }
    String cosT = b.initializer("rope.cos", Tensor.ofFloats("", List.of((long) n, (long) hd), cos));
    String sinT = b.initializer("rope.sin", Tensor.ofFloats("", List.of((long) n, (long) hd), sin));
    String first = b.op("Slice", List.of(x, b.longs(0), b.longs(hd / 2), b.longs(-1)));
    String second = b.op("Slice", List.of(x, b.longs(hd / 2), b.longs(hd), b.longs(-1)));
    String rotated = b.op("Concat", List.of(b.op("Neg", List.of(second)), first), Attribute.of("axis", -1L));
    return b.op("Add", List.of(b.op("Mul", List.of(x, cosT)), b.op("Mul", List.of(rotated, sinT))));
  }

  private String attention(String prefix, String h) {
    int d = c.embedDim();
    int heads = c.heads();
    int hd = c.headDim();
    float scale = (float) (1.0 / Math.sqrt(hd));
    String q;
    String kT;
    String v;
    if (s.qkv == Spelling.Qkv.SEPARATE_SDPA) {
      b.scope(prefix + "/attn/q");
      q = headsByShape(linear(prefix + ".attn.q", h, d, d));
      b.scope(prefix + "/attn/k");
      String k = headsByShape(linear(prefix + ".attn.k", h, d, d));
      b.scope(prefix + "/attn/v");
      v = headsByShape(linear(prefix + ".attn.v", h, d, d));
      b.scope(prefix + "/attn");
      String ctx = scaledDotProductAttention(q, k, v);
      ctx = b.op("Transpose", List.of(ctx), Attribute.ofInts("perm", 0, 2, 1, 3));
      String shape = b.op("Shape", List.of(ctx));
      String lead = b.op("Slice", List.of(shape, b.longs(0), b.longs(2)));
      ctx = b.op("Reshape", List.of(ctx, b.op("Concat", List.of(lead, b.longs(d)), Attribute.of("axis", 0L))));
      b.scope(prefix + "/attn/proj");
      return linear(prefix + ".attn.proj", ctx, d, d);
    }
    if (s.qkv == Spelling.Qkv.SEPARATE) {
      b.scope(prefix + "/attn/q");
      q = headsFirst(linear(prefix + ".attn.q", h, d, d), 0, 2, 1, 3);
      b.scope(prefix + "/attn/k");
      if (f.rotary()) {
        String k = headsFirst(linear(prefix + ".attn.k", h, d, d), 0, 2, 1, 3);
        b.scope(prefix + "/attn");
        q = rotary(q);
        kT = b.op("Transpose", List.of(rotary(k)), Attribute.ofInts("perm", 0, 1, 3, 2));
      } else {
        kT = headsFirst(linear(prefix + ".attn.k", h, d, d), 0, 2, 3, 1);
      }
      b.scope(prefix + "/attn/v");
      v = headsFirst(linear(prefix + ".attn.v", h, d, d), 0, 2, 1, 3);
      b.scope(prefix + "/attn");
    } else {
      b.scope(prefix + "/attn/qkv");
      String qkv = linear(prefix + ".attn.qkv", h, d, 3 * d);
      b.scope(prefix + "/attn");
      String r = b.op("Reshape", List.of(qkv, b.longs(0, 0, 3, heads, hd)));
      String t = b.op("Transpose", List.of(r), Attribute.ofInts("perm", 2, 0, 3, 1, 4));
      List<String> parts = new ArrayList<>(3);
      if (s.qkv == Spelling.Qkv.FUSED_SPLIT) {
        List<String> split = b.op("", "Split", List.of(t, b.longs(1, 1, 1)), 3, Attribute.of("axis", 0L));
        for (String part : split) {
          parts.add(b.op("Squeeze", List.of(part, b.longs(0))));
        }
      } else {
        for (int k = 0; k < 3; k++) {
          parts.add(b.op("Gather", List.of(t, b.scalarLong(k)), Attribute.of("axis", 0L)));
        }
      }
      q = f.rotary() ? rotary(parts.get(0)) : parts.get(0);
      String k = f.rotary() ? rotary(parts.get(1)) : parts.get(1);
      kT = b.op("Transpose", List.of(k), Attribute.ofInts("perm", 0, 1, 3, 2));
      v = parts.get(2);
    }
    String scores;
    switch (s.qkv) {
      case FUSED_SPLIT -> scores = b.op("MatMul", List.of(b.op("Mul", List.of(q, b.scalar(scale))), kT));
      case FUSED_GATHER -> scores = b.op("Mul", List.of(b.op("MatMul", List.of(q, kT)), b.scalar(scale)));
      default -> scores = b.op("Div", List.of(b.op("MatMul", List.of(q, kT)), b.scalar((float) Math.sqrt(hd))));
    }
    String probs = b.op("Softmax", List.of(scores), Attribute.of("axis", -1L));
    String ctx = b.op("MatMul", List.of(probs, v));
    ctx = b.op("Transpose", List.of(ctx), Attribute.ofInts("perm", 0, 2, 1, 3));
    ctx = b.op("Reshape", List.of(ctx, b.longs(0, 0, d)));
    b.scope(prefix + "/attn/proj");
    return linear(prefix + ".attn.proj", ctx, d, d);
  }

  /** [batch, tokens, width] to [batch, heads, tokens, headDim], the target built from the input's shape. */
  private String headsByShape(String x) {
    String lead = b.op("Slice", List.of(b.op("Shape", List.of(x)), b.longs(0), b.longs(2)));
    String target = b.op("Concat", List.of(lead, b.longs(c.heads(), c.headDim())), Attribute.of("axis", 0L));
    return b.op("Transpose", List.of(b.op("Reshape", List.of(x, target))), Attribute.ofInts("perm", 0, 2, 1, 3));
  }

  /**
   * softmax(q k^T / sqrt(headDim)) v as onnxscript's torch_lib writes it: the scale from the query's last dimension,
   * keys transposed by squeezing the leading dimensions, both sides scaled by the scale's square root, and the
   * NaN guard its masked variant puts after the softmax.
   */
  private String scaledDotProductAttention(String q, String k, String v) {
    String lastDim = b.op("Gather", List.of(b.op("Shape", List.of(q)), b.longs(-1)), Attribute.of("axis", 0L));
    String scale = b.op("Div", List.of(b.scalar(1f), b.op("Sqrt", List.of(b.op("CastLike", List.of(lastDim, q))))));
    String keyShape = b.op("Shape", List.of(k));
    String last = b.op("Slice", List.of(keyShape, b.longs(-1), b.longs(Long.MAX_VALUE)));
    String secondLast = b.op("Slice", List.of(keyShape, b.longs(-2), b.longs(-1)));
    String first = b.op("Slice", List.of(keyShape, b.longs(Long.MIN_VALUE), b.longs(-2)));
    String squeezed = b.op("Reshape", List.of(k, b.op("Concat", List.of(b.longs(-1), secondLast, last),
        Attribute.of("axis", 0L))));
    String transposed = b.op("Transpose", List.of(squeezed), Attribute.ofInts("perm", 0, 2, 1));
    String kT = b.op("Reshape", List.of(transposed, b.op("Concat", List.of(first, last, secondLast),
        Attribute.of("axis", 0L))));
    String root = b.op("Sqrt", List.of(scale));
    String scores = b.op("MatMul", List.of(b.op("Mul", List.of(q, root)), b.op("Mul", List.of(kT, root))));
    String probs = b.op("Softmax", List.of(scores), Attribute.of("axis", -1L));
    String guarded = b.op("Where", List.of(b.op("IsNaN", List.of(probs)), b.scalar(0f), probs));
    return b.op("MatMul", List.of(guarded, v));
  }

  /** [batch, tokens, width] to per-head layout with the given permutation of [batch, tokens, heads, headDim]. */
  private String headsFirst(String x, long... perm) {
    String r = b.op("Reshape", List.of(x, b.longs(0, 0, c.heads(), c.headDim())));
    return b.op("Transpose", List.of(r), Attribute.ofInts("perm", perm));
  }

  // ---- layers ------------------------------------------------------------------------------------------------

  private String linear(String name, String x, int in, int out) {
    String bias = b.initializer(name + ".bias", normal(List.of((long) out), 0.02));
    if (s.linear == Spelling.Linear.GEMM_2D) {
      String w = b.initializer(name + ".weight", normal(List.of((long) out, (long) in), 0.5 / Math.sqrt(in)));
      String lead = b.op("Slice", List.of(b.op("Shape", List.of(x)), b.longs(0), b.longs(2)));
      String outShape = b.op("Concat", List.of(lead, b.longs(out)), Attribute.of("axis", 0L));
      String flat = b.op("Reshape", List.of(x, b.longs(-1, in)));
      String y = b.op("Gemm", List.of(flat, w, bias), Attribute.of("transB", 1L));
      return b.op("Reshape", List.of(y, outShape));
    }
    if (s.linear == Spelling.Linear.MATMUL_TRANSPOSED) {
      // torch_lib's aten_linear keeps PyTorch's [out, in] weight and transposes it in the graph.
      String w = b.initializer(name + ".weight", normal(List.of((long) out, (long) in), 0.5 / Math.sqrt(in)));
      String wt = b.op("Transpose", List.of(w), Attribute.ofInts("perm", 1, 0));
      return b.op("Add", List.of(b.op("MatMul", List.of(x, wt)), bias));
    }
    // PyTorch exporters store Linear weights pre-transposed as [in, out] for MatMul.
    String w = b.initializer(name + ".weight", normal(List.of((long) in, (long) out), 0.5 / Math.sqrt(in)));
    String y = b.op("MatMul", List.of(x, w));
    return s == Spelling.TIMM_17 ? b.op("Add", List.of(bias, y)) : b.op("Add", List.of(y, bias));
  }

  private String layerNorm(String name, String x) {
    int d = c.embedDim();
    String gamma = b.initializer(name + ".weight", around1(d));
    String beta = b.initializer(name + ".bias", normal(List.of((long) d), 0.02));
    float eps = 1e-6f;
    return switch (s.norm) {
      case OP -> b.op("LayerNormalization", List.of(x, gamma, beta), Attribute.of("axis", -1L),
          Attribute.of("epsilon", eps));
      case DECOMPOSED -> {
        String mean = b.op("ReduceMean", List.of(x), Attribute.ofInts("axes", -1));
        String diff = b.op("Sub", List.of(x, mean));
        String sq = b.op("Pow", List.of(diff, b.scalar(2f)));
        String var = b.op("ReduceMean", List.of(sq), Attribute.ofInts("axes", -1));
        String std = b.op("Sqrt", List.of(b.op("Add", List.of(var, b.scalar(eps)))));
        String norm = b.op("Div", List.of(diff, std));
        yield b.op("Add", List.of(b.op("Mul", List.of(norm, gamma)), beta));
      }
      case DECOMPOSED_RECIPROCAL -> {
        String axes = b.longs(-1);
        String mean = b.op("ReduceMean", List.of(x, axes));
        String diff = b.op("Sub", List.of(x, mean));
        String var = b.op("ReduceMean", List.of(b.op("Mul", List.of(diff, diff)), axes));
        String std = b.op("Sqrt", List.of(b.op("Add", List.of(var, b.scalar(eps)))));
        String norm = b.op("Mul", List.of(diff, b.op("Reciprocal", List.of(std))));
        yield b.op("Add", List.of(beta, b.op("Mul", List.of(gamma, norm))));
      }
    };
  }

  private String gelu(String x) {
    return switch (s.gelu) {
      case OP -> b.op("Gelu", List.of(x));
      case ERF -> {
        String erf = b.op("Erf", List.of(b.op("Div", List.of(x, b.scalar((float) Math.sqrt(2))))));
        String onePlus = b.op("Add", List.of(erf, b.scalar(1f)));
        if (s == Spelling.HF_13) {
          yield b.op("Mul", List.of(b.op("Mul", List.of(x, b.scalar(0.5f))), onePlus));
        }
        yield b.op("Mul", List.of(b.op("Mul", List.of(x, onePlus)), b.scalar(0.5f)));
      }
      case TANH -> {
        String cube = b.op("Pow", List.of(x, b.scalar(3f)));
        String inner = b.op("Add", List.of(x, b.op("Mul", List.of(cube, b.scalar(0.044715f)))));
        String th = b.op("Tanh", List.of(b.op("Mul", List.of(inner, b.scalar((float) Math.sqrt(2 / Math.PI))))));
        String onePlus = b.op("Add", List.of(th, b.scalar(1f)));
        yield b.op("Mul", List.of(b.op("Mul", List.of(x, b.scalar(0.5f))), onePlus));
      }
    };
  }

  // ---- head --------------------------------------------------------------------------------------------------

  private void head(String x) {
    b.scope("norm");
    String f = layerNorm("norm", x);
    switch (this.f.output()) {
      case TOKENS -> {
        b.add(Node.of("/norm/Identity", "Identity", List.of(f), List.of(TOKENS)));
        return;
      }
      case POOLED -> {
        b.scope("head");
        b.add(Node.of("/head/Gather", "Gather", List.of(f, b.scalarLong(0)), List.of(EMBEDDING),
            Attribute.of("axis", 1L)));
        return;
      }
      case ATTENTION_POOL -> {
        attentionPool(f);
        return;
      }
      case CLASSIFIER -> { }
    }
    b.scope("head");
    String pooled =
        switch (s.pooling) {
          case CLASS_GATHER -> b.op("Gather", List.of(f, b.scalarLong(0)), Attribute.of("axis", 1L));
          case CLASS_SLICE -> b.op("Squeeze", List.of(b.op("Slice", List.of(f, b.longs(0), b.longs(1), b.longs(1))),
              b.longs(1)));
          case MEAN -> b.op("ReduceMean", List.of(b.op("Slice", List.of(f, b.longs(1), b.longs(Long.MAX_VALUE),
              b.longs(1))), b.longs(1)), Attribute.of("keepdims", 0L));
        };
    int d = c.embedDim();
    String bias = b.initializer("head.bias", normal(List.of((long) c.classes()), 0.02));
    if (s.pooling == Spelling.Pooling.CLASS_SLICE) {
      String w = b.initializer("head.weight", normal(List.of((long) d, (long) c.classes()), 1.0 / Math.sqrt(d)));
      String y = b.op("MatMul", List.of(pooled, w));
      b.add(Node.of("/head/Add", "Add", List.of(y, bias), List.of(OUTPUT)));
    } else {
      String w = b.initializer("head.weight", normal(List.of((long) c.classes(), (long) d), 1.0 / Math.sqrt(d)));
      b.add(Node.of("/head/Gemm", "Gemm", List.of(pooled, w, bias), List.of(OUTPUT), Attribute.of("transB", 1L)));
    }
  }

  /**
   * SigLIP's MAP head: a learned query attends to the tokens (keys and values from one layer), the output
   * projection, then {@code x + mlp(norm(x))}; the one pooled token is the embedding.
   */
  private void attentionPool(String tokens) {
    int d = c.embedDim();
    int heads = c.heads();
    int hd = c.headDim();
    b.scope("head/attn_pool");
    String latent = b.initializer("attn_pool.latent", normal(List.of(1L, 1L, (long) d), 0.5));
    b.scope("head/attn_pool/q");
    String q = linear("attn_pool.q", latent, d, d);
    b.scope("head/attn_pool/kv");
    String kv = linear("attn_pool.kv", tokens, d, 2 * d);
    b.scope("head/attn_pool");
    String qh = b.op("Transpose", List.of(b.op("Reshape", List.of(q, b.longs(1, 1, heads, hd)))),
        Attribute.ofInts("perm", 0, 2, 1, 3));
    String r = b.op("Transpose", List.of(b.op("Reshape", List.of(kv, b.longs(0, 0, 2, heads, hd)))),
        Attribute.ofInts("perm", 2, 0, 3, 1, 4));
    String k = b.op("Gather", List.of(r, b.scalarLong(0)), Attribute.of("axis", 0L));
    String v = b.op("Gather", List.of(r, b.scalarLong(1)), Attribute.of("axis", 0L));
    String kT = b.op("Transpose", List.of(k), Attribute.ofInts("perm", 0, 1, 3, 2));
    String scores = b.op("MatMul", List.of(b.op("Mul", List.of(qh, b.scalar((float) (1 / Math.sqrt(hd))))), kT));
    String probs = b.op("Softmax", List.of(scores), Attribute.of("axis", -1L));
    String ctx = b.op("Transpose", List.of(b.op("MatMul", List.of(probs, v))), Attribute.ofInts("perm", 0, 2, 1, 3));
    ctx = b.op("Reshape", List.of(ctx, b.longs(0, 0, d)));
    b.scope("head/attn_pool/proj");
    String x = linear("attn_pool.proj", ctx, d, d);
    b.scope("head/attn_pool/norm");
    String h = layerNorm("attn_pool.norm", x);
    String m = mlp("attn_pool.mlp", "head/attn_pool/mlp", h, EncoderFeatures.Mlp.GELU);
    b.scope("head/attn_pool");
    x = b.op("Add", List.of(x, m));
    b.add(Node.of("/head/Gather", "Gather", List.of(x, b.scalarLong(0)), List.of(EMBEDDING),
        Attribute.of("axis", 1L)));
  }

  // ---- weights -----------------------------------------------------------------------------------------------

  private Tensor normal(List<Long> dims, double std) {
    float[] v = new float[Math.toIntExact(Tensor.elementCount(dims))];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (rng.nextGaussian() * std);
    }
    return Tensor.ofFloats("", dims, v);
  }

  private Tensor around1(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (1 + 0.1 * rng.nextGaussian());
    }
    return Tensor.ofFloats("", List.of((long) n), v);
  }
}
