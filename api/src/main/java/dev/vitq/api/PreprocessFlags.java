package dev.vitq.api;

import dev.vitq.calibration.Preprocessing;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Model;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;

/**
 * Preprocessing asked for on the command line; each value left null comes from the model's {@code preprocess}
 * metadata.
 *
 * @param size input height and width
 * @param mean per-channel mean (3 values)
 * @param std per-channel standard deviation (3 values)
 * @param resize shorter side to resize images to before centre-cropping {@code size}
 */
public record PreprocessFlags(Integer size, double[] mean, double[] std, Integer resize) {
  /** Nothing asked: everything from the model. */
  public static final PreprocessFlags NONE = new PreprocessFlags(null, null, null, null);

  /**
   * The preprocessing for {@code model}: its metadata overridden by these flags.
   *
   * @throws VitqException if the model's input is not an image tensor, or neither metadata nor flags say how to
   *     prepare images
   */
  public Preprocessing resolve(Model model) throws VitqException {
    Value input = imageInput(model);
    Preprocessing base = null;
    var meta = model.metadata("preprocess");
    if (meta.isPresent()) {
      base = Preprocessing.fromMetadata(meta.get());
    }
    if (base == null && (mean == null || std == null)) {
      throw new VitqException("The model has no preprocess metadata; pass --mean and --std (and --size) to say "
          + "how images are prepared.");
    }
    int inputSize = staticSide(input);
    int h = size != null ? size : base != null ? base.height() : inputSize;
    int w = size != null ? size : base != null ? base.width() : inputSize;
    if (h <= 0 || w <= 0) {
      throw new VitqException("The model's input size is not fixed and it has no preprocess metadata; pass --size.");
    }
    try {
      return new Preprocessing(h, w, base != null ? base.scale() : 1 / 255.0, mean != null ? mean : base.mean(),
          std != null ? std : base.std(), resize != null ? resize : base != null ? base.resize() : 0);
    } catch (IllegalArgumentException e) {
      throw new VitqException(e.getMessage() + ".", e);
    }
  }

  /**
   * The image height and width a model's shapes are folded for: {@code --size}, else the model's {@code preprocess}
   * metadata, else {@code {0, 0}} (the model's own input size, or the one its position embedding implies).
   */
  int[] imageSize(Model model) {
    if (size != null) {
      return new int[] {size, size};
    }
    var meta = model.metadata("preprocess");
    if (meta.isPresent()) {
      try {
        Preprocessing p = Preprocessing.fromMetadata(meta.get());
        return new int[] {p.height(), p.width()};
      } catch (VitqException e) {
        // Unusable metadata is reported where preprocessing is resolved, with the reason.
      }
    }
    return new int[] {0, 0};
  }

  /**
   * The model's image input: float or float16, [batch, 3, height, width].
   *
   * @throws VitqException naming what is wrong with it
   */
  static Value imageInput(Model model) throws VitqException {
    var inputs = model.graph().inputs();
    if (inputs.isEmpty()) {
      throw new VitqException("The model has no input.");
    }
    Value v = inputs.get(0);
    var type = v.type();
    if (type == null || !(type.dtype() == DType.FLOAT || type.dtype() == DType.FLOAT16) || type.shape() == null
        || type.shape().size() != 4) {
      throw new VitqException("The model's input '" + v.name() + "' is not an image tensor (float, [batch, 3, height,"
          + " width]) but " + (type == null ? "untyped" : type) + ".");
    }
    Dim c = type.shape().get(1);
    if (c.isFixed() && c.size() != 3) {
      throw new VitqException("The model's input '" + v.name() + "' has " + c.size() + " channels; vitq reads RGB "
          + "images (3 channels).");
    }
    return v;
  }

  /** The input's height when it is static and square, else -1. */
  private static int staticSide(Value input) {
    Dim h = input.type().shape().get(2);
    Dim w = input.type().shape().get(3);
    return h.isFixed() && w.isFixed() && h.size() == w.size() ? (int) h.size() : -1;
  }
}
