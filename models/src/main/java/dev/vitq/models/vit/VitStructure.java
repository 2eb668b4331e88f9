package dev.vitq.models.vit;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The transformer-encoder view of a graph (a ViT classifier, or an embedding encoder such as DINOv2, SigLIP, EVA-02
 * or a CLIP tower): where the embedding, each block's parts, the final norm and the head are, found by the roles of
 * the parts. Parts are named by value: a node by its first output, a tensor by its name.
 *
 * @param input the image input [batch, channels, size, size]
 * @param output the model output the encoder computes: logits, a projection, a pooled embedding or the tokens
 * @param embedding the patch embedding with class token and position embedding
 * @param blocks the transformer blocks, in order
 * @param finalNorm the norm after the last block, over the token sequence or over the pooled vector, or null
 * @param head the pooling and the layers after it (none for a headless encoder)
 * @param embedDim token width
 * @param heads attention heads per block
 * @param tokens tokens per image (patches plus class tokens)
 * @param imageSize input side, in pixels
 * @param patchSize patch side, in pixels
 * @param classes classifier outputs, or 0 when the model has no classifier
 */
public record VitStructure(
    String input,
    String output,
    Embedding embedding,
    List<Block> blocks,
    Norm finalNorm,
    Head head,
    int embedDim,
    int heads,
    int tokens,
    int imageSize,
    int patchSize,
    int classes) {

  public VitStructure {
    Objects.requireNonNull(input);
    Objects.requireNonNull(output);
    Objects.requireNonNull(embedding);
    blocks = List.copyOf(blocks);
    Objects.requireNonNull(head);
  }

  /** Every linear layer, in graph order: each block's projections and MLP, then the head's (pooling, classifiers). */
  public List<Linear> linears() {
    return Stream.of(blocks.stream().flatMap(b -> b.linears().stream()), head.poolLinears().stream(),
        head.linears().stream()).flatMap(s -> s).toList();
  }

  /** Whether there is a final norm and it reads the pooled vector rather than the whole token sequence. */
  public boolean normAfterPooling() {
    return finalNorm != null && !finalNorm.input().equals(blocks.get(blocks.size() - 1).output());
  }

  /** Whether the model ends in a classifier (its output is logits, measured by top-1), not an embedding. */
  public boolean classifier() {
    return head.kind() == Head.Kind.CLASSIFIER;
  }

  /**
   * The patch embedding.
   *
   * @param conv the patch convolution
   * @param convInput the image as the convolution reads it (the model input, unless the model normalises first)
   * @param weight its weight [embedDim, channels, patch, patch]
   * @param bias its bias, or null
   * @param classToken the first prefix token tensor (the class token), or null when the model has none
   * @param positionEmbedding the position embedding tensor, or null
   * @param preNorm the layer norm between the embedding and block 0 (CLIP's), or null
   * @param output the token sequence entering block 0 [batch, tokens, embedDim]
   * @param prefixTokens tokens before the patches (class, distillation and register tokens)
   */
  public record Embedding(
      String conv, String convInput, String weight, String bias, String classToken, String positionEmbedding, Norm preNorm,
      String output, int prefixTokens) {}

  /**
   * A layer norm or RMS norm over the last axis.
   *
   * @param kind whether it is one operator or spelled out
   * @param input the normalised value
   * @param output the result
   * @param scale the gamma tensor, or null
   * @param bias the beta tensor, or null
   * @param epsilon the variance epsilon
   * @param nodes the nodes that compute it
   */
  public record Norm(Kind kind, String input, String output, String scale, String bias, float epsilon,
      List<String> nodes) {
    public Norm {
      nodes = List.copyOf(nodes);
    }

    /** Whether it is an RMSNorm (no mean subtracted, no bias) rather than a LayerNorm. */
    public boolean rms() {
      return kind == Kind.RMS_OPERATOR || kind == Kind.RMS_DECOMPOSED;
    }

    /** How a norm is spelled: LayerNorm or RMSNorm, as one operator or spelled out. */
    public enum Kind { OPERATOR, DECOMPOSED, RMS_OPERATOR, RMS_DECOMPOSED }
  }

  /**
   * A linear layer {@code y = x W + b}.
   *
   * @param input the layer's input as the model sees it
   * @param output the layer's output
   * @param matmul the MatMul or Gemm node
   * @param matmulInput the activation the MatMul or Gemm reads (differs from {@code input} when a Reshape
   *     flattens it to two dimensions first)
   * @param weight the weight tensor
   * @param weightTransposed whether the weight is stored [out, in] (Gemm with transB) rather than [in, out]
   * @param bias the bias tensor, or null
   * @param inFeatures input width
   * @param outFeatures output width
   * @param nodes the nodes that compute it
   */
  public record Linear(String input, String output, String matmul, String matmulInput, String weight,
      boolean weightTransposed, String bias, int inFeatures, int outFeatures, List<String> nodes) {
    public Linear {
      nodes = List.copyOf(nodes);
    }
  }

  /**
   * The MLP's activation.
   *
   * @param kind which function, and how it is spelled
   * @param input its input
   * @param output its output
   * @param nodes the nodes that compute it
   */
  public record Activation(Kind kind, String input, String output, List<String> nodes) {
    public Activation {
      nodes = List.copyOf(nodes);
    }

    /** Whether it is a GELU in one of its spellings (QuickGELU included). */
    public boolean gelu() {
      return kind == Kind.OPERATOR || kind == Kind.ERF || kind == Kind.TANH || kind == Kind.SIGMOID;
    }

    /**
     * The function and its spelling: GELU as the operator, its Erf or tanh formula, or QuickGELU's
     * {@code x * sigmoid(1.702 x)}; SiLU {@code x * sigmoid(x)} (as the formula or an operator); ReLU.
     */
    public enum Kind { OPERATOR, ERF, TANH, SIGMOID, SILU, RELU }
  }

  /**
   * Multi-head self-attention.
   *
   * @param projections the input projections: one fused q/k/v layer, or three layers in the order q, k, v
   * @param query the queries as the score MatMul reads them (scaled, where the model scales queries)
   * @param key the keys as the score MatMul reads them (transposed)
   * @param scores the MatMul of queries and keys
   * @param softmax the Softmax over the scores
   * @param probabilities the attention probabilities as the context MatMul reads them
   * @param value the values as the context MatMul reads them
   * @param context the MatMul of attention probabilities and values
   * @param proj the output projection
   * @param layerScale the per-channel gamma multiplying the branch (LayerScale), or null
   * @param output the branch as the residual add reads it
   * @param rotary whether a rotary position embedding turns the queries and keys
   * @param qkNorm whether the queries and keys are normalised before the scores
   */
  public record Attention(List<Linear> projections, String query, String key, String scores, String softmax,
      String probabilities, String value, String context, Linear proj, String layerScale, String output,
      boolean rotary, boolean qkNorm) {
    public Attention {
      projections = List.copyOf(projections);
      if (projections.size() != 1 && projections.size() != 3) {
        throw new IllegalArgumentException("Attention has 1 fused or 3 separate projections");
      }
    }

    /** Whether q, k and v come from one projection. */
    public boolean fused() {
      return projections.size() == 1;
    }
  }

  /**
   * The channel MLP: fc1, an activation, fc2; or gated (SwiGLU, GeGLU): {@code act(gate) * up}, then fc2.
   *
   * @param fc1 the expanding layer: the only one, the up projection of a gated MLP, or gate and up fused in one
   * @param gate the gate projection of a gated MLP whose gate and up are separate layers, or null
   * @param activation the activation (of the gate, in a gated MLP)
   * @param hidden what fc2 reads, before any norm inside the MLP: the activation's output, or the gated product
   * @param norm a norm between the activation and fc2 (EVA's scaled MLP), or null
   * @param fc2 the contracting layer
   * @param layerScale the per-channel gamma multiplying the branch (LayerScale), or null
   * @param output the branch as the residual add reads it
   */
  public record Mlp(Linear fc1, Linear gate, Activation activation, String hidden, Norm norm, Linear fc2,
      String layerScale, String output) {

    /** Whether the activation's output is multiplied by an up projection before fc2. */
    public boolean gated() {
      return !hidden.equals(activation.output());
    }

    /** The MLP's linear layers in graph order: fc1 (and the gate), then fc2. */
    public List<Linear> linears() {
      return gate == null ? List.of(fc1, fc2) : List.of(gate, fc1, fc2);
    }

    /** A short name of the MLP's kind: gelu, quick-gelu, silu, relu, or swiglu / geglu when gated. */
    public String kindName() {
      if (gated()) {
        return activation.kind() == Activation.Kind.SILU ? "swiglu" : activation.gelu() ? "geglu" : "glu";
      }
      return switch (activation.kind()) {
        case SIGMOID -> "quick-gelu";
        case SILU -> "silu";
        case RELU -> "relu";
        default -> "gelu";
      };
    }
  }

  /**
   * One pre-norm transformer block.
   *
   * @param index position, from 0
   * @param input the residual stream entering the block
   * @param norm1 the norm before attention
   * @param attention the attention
   * @param residual1 the Add of the stream and the attention output
   * @param norm2 the norm before the MLP
   * @param mlp the MLP
   * @param residual2 the Add of the stream and the MLP output, which is the block's output
   */
  public record Block(int index, String input, Norm norm1, Attention attention, String residual1, Norm norm2, Mlp mlp,
      String residual2) {

    /** The block's output. */
    public String output() {
      return residual2;
    }

    /** The block's linear layers: projections, output projection, then the MLP's. */
    public List<Linear> linears() {
      return Stream.of(attention.projections().stream(), Stream.of(attention.proj()), mlp.linears().stream())
          .flatMap(s -> s).toList();
    }

    /** The roles found in the block, for {@code inspect}: its norms, token mixer and channel MLP. */
    public List<String> roles() {
      List<String> roles = new java.util.ArrayList<>();
      roles.add((norm1.rms() ? "rms-norm" : "layer-norm"));
      String mixer = "attention (" + (attention.fused() ? "fused q/k/v" : "separate q/k/v")
          + (attention.rotary() ? ", rotary" : "") + (attention.qkNorm() ? ", q/k norm" : "")
          + (attention.layerScale() != null ? ", layer-scale" : "") + ")";
      roles.add(mixer);
      roles.add((norm2.rms() ? "rms-norm" : "layer-norm"));
      roles.add("mlp (" + mlp.kindName() + (mlp.norm() != null ? ", inner norm" : "")
          + (mlp.layerScale() != null ? ", layer-scale" : "") + ")");
      return List.copyOf(roles);
    }
  }

  /**
   * What follows the blocks: the pooling, then nothing more (an embedding), a projection (CLIP's), one classifier,
   * or two whose outputs are averaged (DeiT's class and distillation heads).
   *
   * @param pooling how tokens become one vector, or {@link Pooling#NONE} when the model outputs the tokens
   * @param poolLinears the linear layers of an attention pool (SigLIP's MAP head), in graph order; else empty
   * @param linears the layers after the pooling, each reading its pooled vector [batch, embedDim]; empty when none
   * @param output the model output the head computes
   */
  public record Head(Pooling pooling, List<Linear> poolLinears, List<Linear> linears, String output) {
    public Head {
      poolLinears = List.copyOf(poolLinears);
      linears = List.copyOf(linears);
      if (pooling == Pooling.NONE && !linears.isEmpty()) {
        throw new IllegalArgumentException("A head without pooling has no layers after it");
      }
    }

    /**
     * What the output is: logits when the layers after the pooling are a classifier (biased, or two averaged), a
     * projection (one layer without bias, as CLIP's), else the embedding itself.
     */
    public Kind kind() {
      if (linears.isEmpty()) {
        return Kind.EMBEDDING;
      }
      return linears.size() > 1 || linears.get(0).bias() != null ? Kind.CLASSIFIER : Kind.PROJECTION;
    }

    /** How the head reduces the tokens: not at all, the class token, their mean, or a learned query attending. */
    public enum Pooling { NONE, CLASS_TOKEN, MEAN, ATTENTION }

    /** What a model's output is. */
    public enum Kind { CLASSIFIER, PROJECTION, EMBEDDING }
  }

  /** The block with that index, if any. */
  public Optional<Block> block(int index) {
    return index >= 0 && index < blocks.size() ? Optional.of(blocks.get(index)) : Optional.empty();
  }
}
