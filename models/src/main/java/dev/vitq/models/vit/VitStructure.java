package dev.vitq.models.vit;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The ViT view of a graph: where the embedding, each block's parts, the final norm and the head are. Parts are
 * named by value: a node by its first output, a tensor by its name.
 *
 * @param input the image input [batch, channels, size, size]
 * @param output the logits output
 * @param embedding the patch embedding with class token and position embedding
 * @param blocks the transformer blocks, in order
 * @param finalNorm the norm after the last block, over the token sequence or over the pooled vector
 * @param head the pooling and classification layer
 * @param embedDim token width
 * @param heads attention heads per block
 * @param tokens tokens per image (patches plus class tokens)
 * @param imageSize input side, in pixels
 * @param patchSize patch side, in pixels
 * @param classes head outputs
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
    Objects.requireNonNull(finalNorm);
    Objects.requireNonNull(head);
  }

  /** Every linear layer, in graph order: each block's projections and MLP, then the head's classifiers. */
  public List<Linear> linears() {
    return Stream.concat(blocks.stream().flatMap(b -> b.linears().stream()), head.linears().stream()).toList();
  }

  /** Whether the final norm reads the pooled vector rather than the whole token sequence. */
  public boolean normAfterPooling() {
    return !finalNorm.input().equals(blocks.get(blocks.size() - 1).output());
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
   * A layer norm over the last axis.
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

    /** How a norm is spelled. */
    public enum Kind { OPERATOR, DECOMPOSED }
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
   * A GELU activation.
   *
   * @param kind how it is spelled
   * @param input its input
   * @param output its output
   * @param nodes the nodes that compute it
   */
  public record Gelu(Kind kind, String input, String output, List<String> nodes) {
    public Gelu {
      nodes = List.copyOf(nodes);
    }

    /** How a GELU is spelled: the operator, its Erf or tanh formula, or QuickGELU's {@code x * sigmoid(1.702 x)}. */
    public enum Kind { OPERATOR, ERF, TANH, SIGMOID }
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
   */
  public record Attention(List<Linear> projections, String query, String key, String scores, String softmax,
      String probabilities, String value, String context, Linear proj, String layerScale, String output) {
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
   * The MLP: fc1, GELU, fc2.
   *
   * @param fc1 the expanding layer
   * @param gelu the activation
   * @param fc2 the contracting layer
   * @param layerScale the per-channel gamma multiplying the branch (LayerScale), or null
   * @param output the branch as the residual add reads it
   */
  public record Mlp(Linear fc1, Gelu gelu, Linear fc2, String layerScale, String output) {}

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

    /** The block's linear layers: projections, output projection, fc1, fc2. */
    public List<Linear> linears() {
      return Stream.concat(attention.projections().stream(), Stream.of(attention.proj(), mlp.fc1(), mlp.fc2()))
          .toList();
    }
  }

  /**
   * The classification head: pooling, then one classifier, or two whose outputs are averaged (DeiT's class and
   * distillation heads).
   *
   * @param pooling how tokens become one vector per classifier
   * @param linears the classifiers, each reading its pooled vector [batch, embedDim]
   * @param output the model output the head computes
   */
  public record Head(Pooling pooling, List<Linear> linears, String output) {
    public Head {
      linears = List.copyOf(linears);
      if (linears.isEmpty()) {
        throw new IllegalArgumentException("A head has at least one classifier");
      }
    }

    /** How the head reduces the tokens. */
    public enum Pooling { CLASS_TOKEN, MEAN }
  }

  /** The block with that index, if any. */
  public Optional<Block> block(int index) {
    return index >= 0 && index < blocks.size() ? Optional.of(blocks.get(index)) : Optional.empty();
  }
}
