package dev.vitq.converter;

import dev.vitq.models.Model;

/** ONNX Runtime's own operator domain, where the fused kernels the deploy passes write live. */
final class MsDomain {
  /** The domain's name. */
  static final String NAME = "com.microsoft";

  private MsDomain() {}

  /** The model, importing the domain if it does not yet. */
  static Model imported(Model model) {
    return model.opsets().stream().anyMatch(o -> o.domain().equals(NAME)) ? model : model.withOpset(NAME, 1);
  }
}
