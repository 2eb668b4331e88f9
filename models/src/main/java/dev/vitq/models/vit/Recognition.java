package dev.vitq.models.vit;

import dev.vitq.models.VitqException;
import java.util.Objects;

/**
 * What recognition found in a model: its ViT structure, or the one-sentence reason it is not a ViT vitq recognises
 * (such a model is still converted, inspected and quantized generically).
 *
 * @param vit the structure, or null when not recognised
 * @param reason why it was not recognised, or null when it was
 */
public record Recognition(VitStructure vit, String reason) {
  public Recognition {
    if ((vit == null) == (reason == null)) {
      throw new IllegalArgumentException("A recognition has either a structure or a reason");
    }
  }

  static Recognition of(VitStructure vit) {
    return new Recognition(Objects.requireNonNull(vit), null);
  }

  static Recognition notAVit(String reason) {
    return new Recognition(null, Objects.requireNonNull(reason));
  }

  /** Whether the model was recognised as a ViT. */
  public boolean recognised() {
    return vit != null;
  }

  /**
   * The structure.
   *
   * @throws VitqException with the reason, when the model was not recognised
   */
  public VitStructure require() throws VitqException {
    if (vit == null) {
      throw new VitqException(reason);
    }
    return vit;
  }
}
