package dev.vitq.models.builder;

import java.util.Arrays;
import java.util.Locale;

/**
 * The ways exporters write the same ViT in ONNX, one per constant. Each fixes the operator set and how layer norm,
 * GELU, the q/k/v projection, linear layers and the head's pooling are spelled.
 */
public enum Spelling {
  /** timm through the TorchScript exporter: LayerNormalization, Erf GELU, fused q/k/v split by Split+Squeeze. */
  TIMM_17(17, Norm.OP, Gelu.ERF, Qkv.FUSED_SPLIT, Linear.MATMUL_ADD, Pooling.CLASS_GATHER),
  /** Hugging Face, opset 13: decomposed layer norm, separate q/k/v, scores divided by sqrt(d). */
  HF_13(13, Norm.DECOMPOSED, Gelu.ERF, Qkv.SEPARATE, Linear.MATMUL_ADD, Pooling.CLASS_SLICE),
  /** torch.export, opset 20: the Gelu op, linears as Reshape-Gemm-Reshape, q/k/v picked by Gather. */
  DYNAMO_20(20, Norm.OP, Gelu.OP, Qkv.FUSED_GATHER, Linear.GEMM_2D, Pooling.CLASS_GATHER),
  /** Opset 18 with tanh GELU, layer norm decomposed with Mul and Reciprocal, mean pooling over patch tokens. */
  TANH_18(18, Norm.DECOMPOSED_RECIPROCAL, Gelu.TANH, Qkv.SEPARATE, Linear.MATMUL_ADD, Pooling.MEAN),
  /**
   * A Hugging Face ViT with SDPA attention through PyTorch's torch.export-based exporter (onnxscript's torch_lib):
   * linears as MatMul of a Transpose of the [out, in] weight, head splits reshaped to targets computed from Shape,
   * and scaled-dot-product attention spelled out: keys transposed through two reshapes, queries and keys each
   * multiplied by the square root of a scale computed from the query's shape, a NaN guard after the softmax.
   */
  TORCH_EXPORT_18(18, Norm.OP, Gelu.ERF, Qkv.SEPARATE_SDPA, Linear.MATMUL_TRANSPOSED, Pooling.CLASS_GATHER);

  enum Norm { OP, DECOMPOSED, DECOMPOSED_RECIPROCAL }

  enum Gelu { ERF, OP, TANH }

  enum Qkv { FUSED_SPLIT, FUSED_GATHER, SEPARATE, SEPARATE_SDPA }

  enum Linear { MATMUL_ADD, GEMM_2D, MATMUL_TRANSPOSED }

  enum Pooling { CLASS_GATHER, CLASS_SLICE, MEAN }

  final int opset;
  final Norm norm;
  final Gelu gelu;
  final Qkv qkv;
  final Linear linear;
  final Pooling pooling;

  Spelling(int opset, Norm norm, Gelu gelu, Qkv qkv, Linear linear, Pooling pooling) {
    this.opset = opset;
    this.norm = norm;
    this.gelu = gelu;
    this.qkv = qkv;
    this.linear = linear;
    this.pooling = pooling;
  }

  /** The operator set version the spelling uses. */
  public int opset() {
    return opset;
  }

  /** The name used on the command line: {@code timm-17}, {@code hf-13}, ... */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /**
   * The spelling of a command-line name.
   *
   * @throws IllegalArgumentException listing the known names
   */
  public static Spelling ofCliName(String name) {
    for (Spelling s : values()) {
      if (s.cliName().equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException("Unknown spelling '" + name + "', expected one of "
        + Arrays.stream(values()).map(Spelling::cliName).toList() + ".");
  }
}
