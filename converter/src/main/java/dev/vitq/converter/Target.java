package dev.vitq.converter;

import dev.vitq.models.VitqException;
import java.util.List;
import java.util.Locale;

/**
 * The runtimes an artifact is written for ({@code --target}), each with the facts the exporter needs to write for it.
 * Which operators each provider takes, and why others go back to the CPU, is {@code vitq check}'s
 * ({@code check/ProviderTables}); one place for each, so the two do not drift apart.
 *
 * <p>{@link #CPU} is ONNX Runtime's CPU provider, which runs its own contrib kernels fastest; every other target gets
 * standard ONNX operators only, in ONNX Runtime's QDQ format (each quantized operator reads DequantizeLinear outputs),
 * which providers that take quantized models fuse into their own kernels. The provider facts come from ONNX Runtime's
 * documentation and tools: its operator lists for NNAPI and CoreML ({@code onnxruntime.tools.mobile_helpers}), the
 * QNN quantization configuration ({@code onnxruntime.quantization.execution_providers.qnn}: MatMul weights per tensor,
 * Conv weights per channel on axis 0, 16-bit and 4-bit types need opset 21), NNAPI's quantized tensor types (uint8
 * asymmetric activations; per-channel symmetric int8 only for convolution weights) and the XNNPACK provider's
 * quantized kernels (convolution, pooling, softmax, resize; MatMul and Gemm in float).
 *
 * @param cliName the name on the command line
 * @param contribKernels whether ONNX Runtime's {@code com.microsoft} kernels may be written
 * @param maxActivationBits the widest activation levels the runtime runs quantized (8: uint8; 16: uint16 too)
 * @param int4Weights whether 4-bit weights are stored as INT4 behind a standard DequantizeLinear (opset 21); if not,
 *     their levels are stored as int8
 * @param perChannelLinearWeights whether MatMul and Gemm weights may have a scale per output channel; if not, each
 *     layer's channels share the widest channel's scale
 * @param perAxisActivations whether an activation may have a scale per axis (the image's colour channels); if not,
 *     it gets one per-tensor range over all channels
 * @param note one line on what the runtime does with the rest
 */
public record Target(String cliName, boolean contribKernels, int maxActivationBits, boolean int4Weights,
    boolean perChannelLinearWeights, boolean perAxisActivations, String note) {

  /** ONNX Runtime's CPU provider: QDQ with contrib integer kernels and fused layer norms, as vitq always wrote. */
  public static final Target CPU = new Target("cpu", true, 16, true, true, true,
      "16-bit activations run as DequantizeLinear then float kernels (the CPU provider has no 16-bit MatMul).");

  /** Standard QDQ: any provider that takes ONNX Runtime's QDQ format. */
  public static final Target QDQ = new Target("qdq", false, 16, true, true, true,
      "Standard operators only; the provider decides what it fuses.");

  /** Qualcomm's QNN provider, HTP (NPU) backend. */
  public static final Target QNN = new Target("qnn", false, 16, true, false, false,
      "HTP runs uint8 or uint16 activations with symmetric int8 (or int4, opset 21) weights; MatMul weights per "
          + "tensor, Conv weights per channel on axis 0.");

  /** Android's NNAPI provider. */
  public static final Target NNAPI = new Target("nnapi", false, 8, false, false, false,
      "uint8 activations only; per-channel int8 weights only for Conv; QDQ MatMul with batched inputs (attention) "
          + "stays on the CPU.");

  /** Apple's CoreML provider. */
  public static final Target COREML = new Target("coreml", false, 8, false, true, false,
      "Its operator lists have no QuantizeLinear or DequantizeLinear: the Q/DQ pairs run on ONNX Runtime's CPU "
          + "between CoreML partitions, and CoreML computes in float16/float32.");

  /** The XNNPACK provider (mobile CPUs). */
  public static final Target XNNPACK = new Target("xnnpack", false, 8, false, true, false,
      "Quantized Conv with per-channel int8 weights; MatMul and Gemm run in float.");

  /** Every target, {@link #CPU} (the default) first. */
  public static final List<Target> ALL = List.of(CPU, QDQ, QNN, NNAPI, COREML, XNNPACK);

  /** Whether this target writes standard operators only (every target but {@link #CPU}). */
  public boolean standardOnly() {
    return !contribKernels;
  }

  /**
   * The target of a command-line name.
   *
   * @throws VitqException listing the known targets
   */
  public static Target parse(String name) throws VitqException {
    for (Target t : ALL) {
      if (t.cliName.equals(name.toLowerCase(Locale.ROOT))) {
        return t;
      }
    }
    throw new VitqException("--target must be one of " + String.join(", ", ALL.stream().map(Target::cliName)
        .toList()) + ", got '" + name + "'.");
  }

  @Override
  public String toString() {
    return cliName;
  }
}
