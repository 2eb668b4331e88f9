package dev.vitq.models.builder;

/**
 * The shape of a ViT: image and patch size, width, depth, heads, MLP width and classes.
 *
 * @param imageSize side of the square input image, in pixels
 * @param patchSize side of a square patch; must divide {@code imageSize}
 * @param channels input channels
 * @param embedDim token width
 * @param depth number of transformer blocks
 * @param heads attention heads; must divide {@code embedDim}
 * @param mlpDim hidden width of each block's MLP
 * @param classes outputs of the classification head
 */
public record VitConfig(
    int imageSize, int patchSize, int channels, int embedDim, int depth, int heads, int mlpDim, int classes) {

  public VitConfig {
    positive(imageSize, "image size");
    positive(patchSize, "patch size");
    positive(channels, "channels");
    positive(embedDim, "embedding width");
    positive(depth, "depth");
    positive(heads, "heads");
    positive(mlpDim, "MLP width");
    positive(classes, "classes");
    if (imageSize % patchSize != 0) {
      throw new IllegalArgumentException(
          "Patch size " + patchSize + " does not divide image size " + imageSize + ".");
    }
    if (embedDim % heads != 0) {
      throw new IllegalArgumentException(
          "Heads (" + heads + ") must divide the embedding width (" + embedDim + ").");
    }
    if ((long) embedDim * mlpDim * depth > 4_000_000_000L) {
      throw new IllegalArgumentException("A model of that size would not fit in an ONNX file.");
    }
  }

  /** DeiT/ViT-Tiny: width 192, 12 blocks, 3 heads, MLP 768. */
  public static VitConfig tiny(int imageSize, int patchSize, int classes) {
    return new VitConfig(imageSize, patchSize, 3, 192, 12, 3, 768, classes);
  }

  /** DeiT/ViT-Small: width 384, 12 blocks, 6 heads, MLP 1536. */
  public static VitConfig small(int imageSize, int patchSize, int classes) {
    return new VitConfig(imageSize, patchSize, 3, 384, 12, 6, 1536, classes);
  }

  /** ViT/DeiT-Base: width 768, 12 blocks, 12 heads, MLP 3072. */
  public static VitConfig base(int imageSize, int patchSize, int classes) {
    return new VitConfig(imageSize, patchSize, 3, 768, 12, 12, 3072, classes);
  }

  /** ViT-Large: width 1024, 24 blocks, 16 heads, MLP 4096. */
  public static VitConfig large(int imageSize, int patchSize, int classes) {
    return new VitConfig(imageSize, patchSize, 3, 1024, 24, 16, 4096, classes);
  }

  /** Patches per image. */
  public int patches() {
    int side = imageSize / patchSize;
    return side * side;
  }

  /** Tokens per image: the patches and the class token. */
  public int tokens() {
    return patches() + 1;
  }

  public int headDim() {
    return embedDim / heads;
  }

  private static void positive(int v, String what) {
    if (v <= 0) {
      throw new IllegalArgumentException("The " + what + " must be positive, got " + v + ".");
    }
  }
}
