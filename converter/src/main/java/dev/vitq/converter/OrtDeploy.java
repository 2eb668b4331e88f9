package dev.vitq.converter;

import dev.vitq.models.Model;
import dev.vitq.models.canon.DeadCode;
import dev.vitq.models.vit.VitStructure;

/**
 * The deploy-time passes that turn a lowered (Q/DQ) model into the graph ONNX Runtime runs fastest: integer linear
 * kernels with their biases ({@link IntegerKernels}), and vectorised layer norms ({@link FastLayerNorm}) when the
 * model is a ViT vitq recognises. Every artifact vitq writes for ONNX Runtime goes through here, so here, last, what
 * no output reads any more is dropped ({@link DeadCode}): the constants of the multiplications folded into scales,
 * and whatever the lowering or a split's cut left unread. ONNX Runtime would remove them itself, with a warning
 * printed at every load of the file.
 */
public final class OrtDeploy {
  private OrtDeploy() {}

  /**
   * The lowered model with every deploy pass applied that fits it.
   *
   * @param vit the model's structure, or null for a model quantized generically
   * @param tokens the tokens its layer norms see (fewer in a split's cloud half)
   */
  public static Model apply(Model lowered, VitStructure vit, long tokens) {
    Model fused = IntegerKernels.apply(lowered);
    return DeadCode.apply(vit == null ? fused : FastLayerNorm.apply(fused, vit, tokens));
  }
}
