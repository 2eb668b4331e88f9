package dev.vitq.quantizer;

import dev.vitq.models.DType;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Linear;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tensors a scheme quantizes in a transformer encoder, found from the roles recognition found.
 *
 * <p>Activations, per tensor: the input of every MatMul, Gemm and Conv (the image, the inputs of q/k/v, the output
 * projection, fc1 (and the gate), fc2, an attention pool's layers and the head; queries, keys, values and attention
 * probabilities), the norm inputs (the residual stream as each norm reads it) and the MLP activation outputs. The
 * residual adds stay float (see {@link QdqLowering}). Weights, per output channel: every linear layer and the patch
 * embedding. A role the model does not have (a head, a final norm) simply has no site.
 */
public final class QuantSites {
  private QuantSites() {}

  /** The sites of {@code vit} under {@code scheme} with its default techniques, each tensor once, in graph order. */
  public static List<QuantSite> of(VitStructure vit, Scheme scheme) {
    return of(vit, scheme, Technique.defaults(scheme));
  }

  /**
   * The sites of {@code vit} under {@code scheme}, each tensor once, in graph order; with
   * {@link Technique#NORM_INPUT_8BIT} the layer-norm inputs keep 8 bits, with {@link Technique#IMAGE_8BIT} the
   * patch embedding's input; with {@link Technique#FLOAT_NORM_INPUT} no layer-norm input is quantized, with
   * {@link Technique#FLOAT_ATTENTION} no query, key, value or attention probability.
   */
  public static List<QuantSite> of(VitStructure vit, Scheme scheme, Set<Technique> techniques) {
    Map<String, QuantSite> sites = new LinkedHashMap<>();
    boolean norms = !techniques.contains(Technique.FLOAT_NORM_INPUT);
    int a = scheme.activationBits();
    int normBits = techniques.contains(Technique.NORM_INPUT_8BIT) ? Math.max(8, a) : a;
    int imageBits = techniques.contains(Technique.IMAGE_8BIT) ? Math.max(8, a) : a;
    int w = scheme.weightBits();
    int head = vit.blocks().size();

    // The image is quantized exactly as its pixels only when the patch convolution reads it as the model gets it.
    String image = vit.embedding().convInput();
    add(sites, new QuantSite(image, image.equals(vit.input()) ? Role.CONV_INPUT : Role.LINEAR_INPUT, -1, imageBits,
        -1));
    add(sites, new QuantSite(vit.embedding().weight(), Role.WEIGHT, -1, 8, 0));
    if (norms && vit.embedding().preNorm() != null) {
      add(sites, new QuantSite(vit.embedding().preNorm().input(), Role.NORM_INPUT, -1, normBits, -1));
    }
    for (Block b : vit.blocks()) {
      int i = b.index();
      if (norms) {
        add(sites, new QuantSite(b.norm1().input(), Role.NORM_INPUT, i, normBits, -1));
      }
      for (Linear p : b.attention().projections()) {
        add(sites, new QuantSite(p.matmulInput(), Role.LINEAR_INPUT, i, a, -1));
        add(sites, weight(p, i, w));
      }
      var attn = b.attention();
      if (!techniques.contains(Technique.FLOAT_ATTENTION)) {
        add(sites, new QuantSite(attn.query(), Role.ATTN_QUERY, i, a, -1));
        add(sites, new QuantSite(attn.key(), Role.ATTN_KEY, i, a, -1));
        add(sites, new QuantSite(attn.value(), Role.ATTN_VALUE, i, a, -1));
        add(sites, new QuantSite(attn.probabilities(), Role.SOFTMAX_OUTPUT, i, a, -1));
      }
      add(sites, new QuantSite(attn.proj().matmulInput(), Role.LINEAR_INPUT, i, a, -1));
      add(sites, weight(attn.proj(), i, w));
      if (norms) {
        add(sites, new QuantSite(b.norm2().input(), Role.NORM_INPUT, i, normBits, -1));
      }
      var mlp = b.mlp();
      add(sites, new QuantSite(mlp.fc1().matmulInput(), Role.LINEAR_INPUT, i, a, -1));
      if (mlp.gate() != null) {
        add(sites, weight(mlp.gate(), i, w));
      }
      add(sites, weight(mlp.fc1(), i, w));
      // The activation's output as fc2 reads it; a gated product or a normalised one (EVA's inner norm, which stays
      // float) is a plain linear input.
      boolean activationOutput = !mlp.gated() && mlp.norm() == null;
      add(sites, new QuantSite(mlp.fc2().matmulInput(), activationOutput ? Role.GELU_OUTPUT : Role.LINEAR_INPUT, i,
          a, -1));
      add(sites, weight(mlp.fc2(), i, w));
    }
    // The final norm's input is quantized for the layers after the norm; where none follows (an embedding is the
    // model's output), a quantizer there would only add error to the output. Nor where the norm runs over every
    // token and the head then reads the class token alone: one per-tensor grid would be set by the patch tokens,
    // which the head discards, and the class token can be a million times smaller (DeiT-III at initialisation: its
    // output was exactly zero); the head's input, that token after the norm, is quantized.
    boolean readByLayers = !(vit.head().poolLinears().isEmpty() && vit.head().linears().isEmpty());
    boolean classTokenOfNormedTokens = vit.head().pooling() == VitStructure.Head.Pooling.CLASS_TOKEN
        && !vit.normAfterPooling();
    if (norms && vit.finalNorm() != null && readByLayers && !classTokenOfNormedTokens) {
      add(sites, new QuantSite(vit.finalNorm().input(), Role.NORM_INPUT, head, normBits, -1));
    }
    for (Linear l : vit.head().poolLinears()) {
      add(sites, new QuantSite(l.matmulInput(), Role.LINEAR_INPUT, head, a, -1));
      add(sites, weight(l, head, 8));
    }
    for (Linear l : vit.head().linears()) {
      add(sites, new QuantSite(l.matmulInput(), Role.LINEAR_INPUT, head, a, -1));
      add(sites, weight(l, head, 8));
    }
    return List.copyOf(sites.values());
  }

  /**
   * The sites with the residual stream entering block {@code k} quantized too, where a device/cloud split crosses
   * ({@link Technique#FLOAT_NORM_INPUT} leaves it out of {@link #of}): at 8 bits or the scheme's activation bits if
   * wider, in graph order before block {@code k}'s first site. The sites unchanged if they have it already.
   */
  public static List<QuantSite> withBoundary(List<QuantSite> sites, VitStructure vit, Scheme scheme, int k) {
    if (k < 1 || k >= vit.blocks().size()) {
      return sites; // the split refuses it, in its own words
    }
    String boundary = vit.blocks().get(k).input();
    if (sites.stream().anyMatch(s -> s.tensor().equals(boundary))) {
      return sites;
    }
    List<QuantSite> out = new ArrayList<>(sites);
    int first = 0;
    while (first < out.size() && out.get(first).block() != k) {
      first++;
    }
    out.add(first, new QuantSite(boundary, Role.NORM_INPUT, k, Math.max(8, scheme.activationBits()), -1));
    return List.copyOf(out);
  }

  /**
   * The sites of a model that is not a ViT vitq recognises, chosen as ONNX Runtime's static quantizer chooses them:
   * every MatMul, Gemm and Conv with a constant floating-point weight gets that weight quantized per output channel
   * and its activation input per tensor. Convolution weights keep 8 bits, as a ViT's patch embedding does.
   */
  public static List<QuantSite> generic(Model model, Scheme scheme) {
    GraphIndex idx = GraphIndex.of(model.graph());
    Map<String, QuantSite> sites = new LinkedHashMap<>();
    int a = scheme.activationBits();
    for (Node n : model.graph().topologicalOrder().orElse(model.graph().nodes())) {
      boolean conv = n.is("Conv");
      if (!(conv || n.is("MatMul") || n.is("Gemm")) || idx.isConstant(n.input(0))) {
        continue;
      }
      Tensor w = idx.initializer(n.input(1)).filter(t -> isFloat(t.dtype())).orElse(null);
      if (w == null || idx.graph().input(w.name()).isPresent() || (conv ? w.rank() < 3 : w.rank() != 2)
          || (n.is("Gemm") && n.intAttr("transA", 0) != 0)) {
        continue;
      }
      int axis = conv || (n.is("Gemm") && n.intAttr("transB", 0) != 0) ? 0 : 1;
      boolean image = conv && idx.graph().input(n.input(0)).isPresent();
      add(sites, new QuantSite(n.input(0), image ? Role.CONV_INPUT : Role.LINEAR_INPUT, 0, a, -1));
      add(sites, new QuantSite(w.name(), Role.WEIGHT, 0, conv ? 8 : scheme.weightBits(), axis));
    }
    return List.copyOf(sites.values());
  }

  private static boolean isFloat(DType t) {
    return t == DType.FLOAT || t == DType.FLOAT16 || t == DType.BFLOAT16 || t == DType.DOUBLE;
  }

  private static QuantSite weight(Linear l, int block, int bits) {
    return new QuantSite(l.weight(), Role.WEIGHT, block, bits, l.weightTransposed() ? 0 : 1);
  }

  /** Keeps the first site of each tensor: a tensor feeding several layers is quantized once. */
  private static void add(Map<String, QuantSite> sites, QuantSite s) {
    sites.putIfAbsent(s.tensor(), s);
  }

  /** Only the activation sites. */
  public static List<QuantSite> activations(List<QuantSite> sites) {
    List<QuantSite> out = new ArrayList<>();
    for (QuantSite s : sites) {
      if (s.role().isActivation()) {
        out.add(s);
      }
    }
    return out;
  }
}
