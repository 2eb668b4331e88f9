package dev.vitq.converter;

import dev.vitq.models.Model;
import dev.vitq.models.vit.VitStructure;

/**
 * The deploy-time passes that turn a lowered (Q/DQ) model into the graph ONNX Runtime runs fastest: integer linear
 * kernels with their biases ({@link IntegerKernels}), and vectorised layer norms ({@link FastLayerNorm}) when the
 * model is a ViT vitq recognises. Every artifact vitq writes for ONNX Runtime goes through here.
 */
final class OrtDeploy {
  /** The domain of ONNX Runtime's own operators. */
  static final String MS_DOMAIN = "com.microsoft";

  private OrtDeploy() {}

  /** The model, importing ONNX Runtime's operator domain if it does not yet. */
  static Model importingMsDomain(Model model) {
    return model.opsets().stream().anyMatch(o -> o.domain().equals(MS_DOMAIN)) ? model : model.withOpset(MS_DOMAIN, 1);
  }

  /**
   * @param vit the model's structure, or null for a model quantized generically
   * @param tokens the tokens its layer norms see (fewer in a split's cloud half)
   */
  static Model apply(Model lowered, VitStructure vit, long tokens) {
    Model fused = IntegerKernels.apply(lowered);
    return vit == null ? fused : FastLayerNorm.apply(fused, vit, tokens);
  }
}
