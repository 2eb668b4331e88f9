package dev.vitq.quantizer;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * Quantizers beyond per-tensor uniform activations that calibration may choose, and corrections of the rounded
 * weights. Which ones a scheme uses by default was decided by measurement on held-out images (BENCHMARKS.md, the
 * ablation table of issue 11).
 */
public enum Technique {
  /** Post-LayerNorm activations per channel at per-tensor cost (RepQ-ViT's reparameterisation). */
  LN_REPARAM,
  /**
   * Softmax outputs below 8 bits on a log-sqrt(2) grid, twice as fine near 1 as log2. Either grid's top level is
   * calibrated down when the probabilities stay below one half ({@link ScaleInit#logScale}).
   */
  LOG_SQRT2_SOFTMAX,
  /**
   * GELU outputs below 8 bits on twin uniform levels: the negative part ([-0.17, 0]) with a scale of its own, the
   * levels split between the sides where the calibration error is least (PTQ4ViT's twin uniform splits them in half).
   */
  TWIN_GELU,
  /**
   * Layer-norm inputs (the residual stream) at 8 bits when the other activations are narrower: at 4 bits the stream
   * alone costs 30 points of agreement on the shared model. RepQ-ViT and PTQ4ViT leave it in float.
   */
  NORM_INPUT_8BIT,
  /**
   * Layer-norm inputs on one base scale widened by power-of-two factors for the few channels tens of times wider
   * (FQ-ViT), instead of one per-tensor range: the factors cost two elementwise multiplications per norm. A
   * device/cloud split's boundary, where the residual stream crosses as levels for every reader, always uses them.
   */
  NORM_INPUT_FACTORS,
  /**
   * Layer-norm inputs (the residual stream) left in float. ONNX Runtime runs layer norms in float, and the stream's
   * quantizer is read by the norm alone (the residual add stays float, see {@link QdqLowering}), so on a CPU its
   * levels only add error: the wide channels of self-supervised encoders (DINOv2, DeiT-III) lose most there. A
   * device/cloud split still quantizes its boundary, where the stream crosses as levels.
   */
  FLOAT_NORM_INPUT,
  /**
   * The attention's queries, keys, values and probabilities left in float: its two MatMuls then run as float kernels
   * instead of ONNX Runtime's integer ones.
   */
  FLOAT_ATTENTION,
  /**
   * The image entering the patch embedding at 8 bits when the other activations are narrower: where the convolution
   * reads the model's input, 8-bit levels on the pixel grid carry every value of an image decoded from an 8-bit file
   * (to within rounding the mean to a level); the patch embedding's weights keep 8 bits already.
   */
  IMAGE_8BIT,
  /**
   * Linear weights rounded by GPTQ (error-compensating, from the Hessian of each layer's inputs on calibration
   * images) instead of to nearest, on the same grid; 8-bit weights only of layers up to 2,048 inputs wide, where it
   * pays for its cost (see {@link WeightCorrection}).
   */
  GPTQ,
  /** Linear biases corrected by the mean output error of the quantized weights on calibration images. */
  BIAS_CORRECTION,
  /**
   * The patch embedding's bias corrected by the mean rounding error of its quantized image. 8-bit levels on the pixel
   * grid carry every pixel of an 8-bit image, but offset by the fraction of {@code mean / scale} that an integer zero
   * point cannot hold (up to half a level per colour channel: ImageNet's red mean is 123.675 levels), which the
   * convolution turns into one constant shift of every patch token; folded into its bias, the quantized image gives
   * the float convolution's output exactly.
   */
  PATCH_BIAS_CORRECTION;

  /** Whether it changes the rounded weights or biases (needing calibration images), not how a tensor is quantized. */
  public boolean correctsWeights() {
    return this == GPTQ || this == BIAS_CORRECTION || this == PATCH_BIAS_CORRECTION;
  }

  /** The lower-case, dashed name used on the command line. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /**
   * The techniques a scheme uses unless told otherwise, each where it measured best on held-out images of the shared
   * model: no activation quantizers at 8-bit activations (per-channel post-norm inputs cost 0.003-0.02 there, the
   * 4-bit weights of the rescaled layers losing more than the activations gain); below 8 bits all three (on 1,000
   * images the best rows were within noise of each other; on 5,000, all three won by 0.004 at A6 and at A4). GPTQ
   * for 4-bit weights, on 5,000 images: W4A8 agreement 0.9776 against 0.9612 rounded to nearest, W4A4 0.8800
   * against 0.8686; at W6A6 it lost 0.0016 (measured while the residual stream was still quantized). Bias
   * correction: W4A8 0.9598 alone, 0.9778 with GPTQ (one image from GPTQ alone), so off there. Since the residual
   * stream stays float, W8A8 takes both: agreement 0.9902 with GPTQ and bias correction, 0.9898 with GPTQ, 0.9880 with
   * bias correction, 0.9888 with neither (5,000 images; a margin of 7 images, chosen on the measuring set). Twin
   * uniform GELU outputs at W4A4: 0.9184 against 0.8876 (GELU outputs are where W4A4 loses most: at 8 bits they give
   * 0.9216); at W6A6 0.9746 against 0.9744, so off there. Layer-norm input factors: W8A8 0.9902 with them, 0.9908
   * with one per-tensor range, and 0.565x FP32's batch-1 latency against 0.589x, so off there; W4A8 0.9828 against
   * 0.9814, W6A6 0.9744 against 0.9706, W4A4 0.9184 against 0.9150, so on there. An 8-bit image at W4A4: 0.9318
   * against 0.9184, the largest loss one activation had left there; at W6A6 0.9720 against 0.9744, so off there.
   * Float layer-norm inputs (added to the defaults above, 5,000 images): W8A8 0.9912 against 0.9900, W4A8 0.9834
   * against 0.9820, W4A4 0.9352 against 0.9348, and on DINOv2 and DeiT-III at W8A8 most of their output cosine lost;
   * at W6A6 0.9682 against 0.9746, so off there. The patch bias corrected for the 8-bit image's zero points (5,000
   * images; 224-pixel encoders on 64 photos): W8A8 0.9912 either way on the shared model (its CIFAR-10 means sit near
   * levels), output cosine 0.99928 -> 0.99946 on DeiT-III and 0.99930 -> 0.99939 on DINOv2; W4A8 0.9844 against
   * 0.9834; W4A4 0.9316 against 0.9352, so off there. At 16-bit activations the image keeps the same 8-bit pixel grid,
   * so it is on. Float attention: W8A8 0.9940 against 0.9912, for 2-7% of CPU latency, so off by default.
   */
  public static Set<Technique> defaults(Scheme scheme) {
    return switch (scheme) {
      case W8A8 -> EnumSet.of(FLOAT_NORM_INPUT, GPTQ, BIAS_CORRECTION, PATCH_BIAS_CORRECTION);
      case W4A8 -> EnumSet.of(FLOAT_NORM_INPUT, NORM_INPUT_FACTORS, GPTQ, PATCH_BIAS_CORRECTION);
      case W6A6 -> EnumSet.of(LN_REPARAM, NORM_INPUT_8BIT, NORM_INPUT_FACTORS, LOG_SQRT2_SOFTMAX);
      case W4A4 -> EnumSet.of(FLOAT_NORM_INPUT, LN_REPARAM, NORM_INPUT_8BIT, NORM_INPUT_FACTORS, IMAGE_8BIT,
          LOG_SQRT2_SOFTMAX, TWIN_GELU, GPTQ);
      // At 16 bits the activations need none of the narrow-activation quantizers; the weights are corrected as at
      // 8 (W8A16) or 4 bits (W4A16).
      case W8A16 -> EnumSet.of(GPTQ, BIAS_CORRECTION, PATCH_BIAS_CORRECTION);
      case W4A16 -> EnumSet.of(NORM_INPUT_FACTORS, GPTQ, PATCH_BIAS_CORRECTION);
      // A mixed plan takes each block's quantizers from the uniform scheme its activation bits come from; its weights,
      // 4- and 8-bit, are rounded by GPTQ.
      case AUTO -> EnumSet.of(GPTQ);
      // Written without calibration: no quantizer to choose, no images to correct weights on.
      case W8_DYNAMIC, FP16 -> EnumSet.noneOf(Technique.class);
    };
  }

  /**
   * Techniques from a comma-separated list of command-line names, where {@code default} stands for {@code scheme}'s
   * defaults (so {@code default,float-attention} adds one), or none for {@code none}.
   *
   * @throws IllegalArgumentException listing the known names
   */
  public static Set<Technique> ofCliNames(String list, Scheme scheme) {
    Set<Technique> out = EnumSet.noneOf(Technique.class);
    if (list.isBlank() || list.strip().equalsIgnoreCase("none")) {
      return out;
    }
    for (String name : list.split(",")) {
      if (name.strip().equalsIgnoreCase("default")) {
        out.addAll(defaults(scheme));
        continue;
      }
      Technique found = null;
      for (Technique t : values()) {
        if (t.cliName().equals(name.strip().toLowerCase(Locale.ROOT))) {
          found = t;
        }
      }
      if (found == null) {
        throw new IllegalArgumentException("Unknown quantizer technique '" + name.strip() + "', expected 'none' or "
            + "a comma-separated list of 'default' and " + Arrays.stream(values()).map(Technique::cliName).toList()
            + ".");
      }
      out.add(found);
    }
    return out;
  }
}
