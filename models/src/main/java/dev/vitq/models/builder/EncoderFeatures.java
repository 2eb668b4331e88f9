package dev.vitq.models.builder;

import java.util.Objects;

/**
 * What an encoder has beyond a plain ViT classifier, for {@link VitBuilder}: the families people put on devices
 * differ in these parts (DINOv2: registers, LayerScale, no classifier; EVA-02: SwiGLU and rotary embedding; SigLIP:
 * an attention-pool head).
 *
 * @param output what the model outputs after the final norm
 * @param mlp the blocks' channel MLP
 * @param rotary whether a rotary position embedding turns queries and keys (the fused and separate q/k/v spellings)
 * @param layerScale whether each branch is multiplied by a per-channel gamma before its residual add
 * @param registers register tokens after the class token
 */
public record EncoderFeatures(Output output, Mlp mlp, boolean rotary, boolean layerScale, int registers) {

  /** A plain ViT classifier: what {@link VitBuilder#build(VitConfig, Spelling, long)} writes. */
  public static final EncoderFeatures CLASSIFIER = new EncoderFeatures(Output.CLASSIFIER, Mlp.GELU, false, false, 0);

  public EncoderFeatures {
    Objects.requireNonNull(output);
    Objects.requireNonNull(mlp);
    if (registers < 0) {
      throw new IllegalArgumentException("Register tokens cannot be negative, got " + registers + ".");
    }
  }

  /** What the model outputs. */
  public enum Output {
    /** Logits of a classifier on the pooled class token (or mean, per spelling). */
    CLASSIFIER,
    /** The pooled class token itself, normalised: a headless embedding model ({@code embedding}). */
    POOLED,
    /** The normalised tokens ({@code last_hidden_state}). */
    TOKENS,
    /** A learned query attending to the tokens, then an MLP (SigLIP's MAP head) ({@code embedding}). */
    ATTENTION_POOL
  }

  /** The channel MLP. */
  public enum Mlp {
    /** fc1, GELU (in the spelling's form), fc2. */
    GELU,
    /** SiLU(gate) times up, as two layers, then fc2 (EVA-02's SwiGLU). */
    SWIGLU
  }

  /** Tokens before the patches: the class token and the registers. */
  public int prefixTokens() {
    return 1 + registers;
  }
}
