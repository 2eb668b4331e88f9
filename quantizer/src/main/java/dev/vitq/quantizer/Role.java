package dev.vitq.quantizer;

/** What a quantized tensor is in the ViT; schemes and the search treat roles differently. */
public enum Role {
  /** A linear or convolution weight, quantized per output channel. */
  WEIGHT,
  /** The image entering the patch embedding. */
  CONV_INPUT,
  /** The input of a linear layer (q/k/v, projection, fc1, head). */
  LINEAR_INPUT,
  /** Queries entering the score MatMul. */
  ATTN_QUERY,
  /** Keys entering the score MatMul. */
  ATTN_KEY,
  /** Values entering the context MatMul. */
  ATTN_VALUE,
  /** Attention probabilities, the softmax output. */
  SOFTMAX_OUTPUT,
  /** The residual stream entering a layer norm. */
  NORM_INPUT,
  /** The MLP activation's output entering fc2 (a GELU's, QuickGELU's, SiLU's or ReLU's; not a gated product). */
  GELU_OUTPUT,
  /**
   * The attention or MLP output added to the residual stream. Plans made before the stream stayed float have it;
   * new ones do not: the float Add that reads it gains nothing from integer levels, and quantizing it cost agreement
   * (W4A4 0.8744 with it, 0.8870 without, on the shared model).
   */
  RESIDUAL_BRANCH;

  /** Whether the role is an activation (quantized per tensor from calibration statistics). */
  public boolean isActivation() {
    return this != WEIGHT;
  }
}
