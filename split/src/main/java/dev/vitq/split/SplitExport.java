package dev.vitq.split;

import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.Deploy;
import dev.vitq.converter.Format;
import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.Provenance;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.QuantSite;
import dev.vitq.quantizer.QuantSites;
import java.nio.file.Path;
import java.util.List;

/**
 * Splits a quantized ViT into a device/cloud bundle: the boundary's coding (the plan's levels, or the best coding
 * under a byte budget), the two halves, and the bundle folder with its manifest. What {@code vitq export} does once it
 * has a plan.
 */
public final class SplitExport {
  private SplitExport() {}

  /**
   * What was written.
   *
   * @param reduction the reduction used (the one chosen under a budget)
   * @param tokensIn tokens per image entering block K+1 in the model
   * @param tokensOut tokens per image crossing the boundary
   * @param bytesPerImage boundary bytes per image
   * @param float32BytesPerImage every token in float32: what the float model would send at this boundary
   * @param deviceBytes size of the device model file (ONNX, or ORT when only ORT was written)
   * @param cloudBytes size of the cloud model file, likewise
   * @param configuration the reduction and the coding used
   * @param measure how a configuration is scored against the float model: {@code agreement} (of the top-1 class, for
   *     a classifier) or {@code mean cosine} (of the outputs, for an embedding model)
   * @param calibratedScore under a budget: the chosen configuration's score on calibration images, else null
   * @param tried under a budget: every configuration tried, else empty
   */
  public record Result(Reduction reduction, int tokensIn, int tokensOut, long bytesPerImage, long float32BytesPerImage,
      long deviceBytes, long cloudBytes, String configuration, String measure, Double calibratedScore,
      List<Tried> tried) {}

  /**
   * A configuration tried under a budget.
   *
   * @param configuration the reduction and the coding
   * @param tokens tokens per image
   * @param bytesPerImage bytes per image
   * @param score against the float model on the scoring half of the calibration images, as {@link Result#measure}
   */
  public record Tried(String configuration, int tokens, long bytesPerImage, double score) {}

  /**
   * Writes the bundle; under a budget first chooses the coding on {@code calibration} (fitted on one half, scored on
   * the other). The bundle appears complete or not at all.
   *
   * @param calibration images for the budget's choice, or null without a budget
   * @param batch images per ONNX Runtime run
   * @throws VitqException if the split, the reduction or the budget does not fit the model, or the bundle cannot be
   *     written
   */
  public static Result write(SplitRequest r, ImageDataset calibration, long seed, InferenceSession.Config session,
      int batch, Progress progress) throws VitqException {
    Reduction reduction = r.reduction();
    BoundaryCodec codec = null;
    BoundaryBudget.Choice choice = null;
    if (r.maxBytes() != 0) {
      choice = BoundaryBudget.choose(r.model(), r.shipped(), r.vit(), r.plan(), r.split(), r.floatCloud(),
          r.maxBytes(), calibration, seed, session, batch, progress);
      reduction = choice.best().reduction();
      codec = choice.best().codec();
    }
    // Both halves are written for the target, from the plan fitted to it.
    QuantPlan plan = Deploy.plan(r.shipped(), r.plan(), r.target());
    Split.Parts parts = Split.of(r.model(), r.shipped(), r.vit(), plan, r.split(), reduction, r.floatCloud(),
        codec, r.target());
    String provenance = Provenance.of(r.source().toString(), r.sourceSha256(), plan);
    Model device = Provenance.stamp(parts.device(), provenance);
    Model cloud = Provenance.stamp(parts.cloud(), provenance);
    Bundle.write(r.bundle(), device, cloud, Manifest.of(r, parts, reduction, choice), r.format(), r.target());
    List<Tried> tried = choice == null ? List.of() : choice.tried().stream()
        .map(c -> new Tried(c.describe(), c.tokens(), c.bytesPerImage(), c.score())).toList();
    Path deviceFile = r.bundle().resolve(r.format() == Format.ORT ? Bundle.DEVICE_ORT : Bundle.DEVICE);
    Path cloudFile = r.bundle().resolve(r.format() == Format.ORT ? Bundle.CLOUD_ORT : Bundle.CLOUD);
    int tokensIn = r.vit().tokens();
    return new Result(reduction, tokensIn, parts.tokens(), parts.bytesPerImage(), 4L * tokensIn * parts.width(),
        ModelFiles.sizeOf(deviceFile), ModelFiles.sizeOf(cloudFile), reduction.describe() + ", "
        + (codec == null ? "the plan's " + parts.quantizer().bits() + "-bit levels" : codec),
        r.vit().classifier() ? "agreement" : "mean cosine", choice == null ? null : choice.best().score(), tried);
  }

  /**
   * A plan made elsewhere ({@code quantize --plan-out}) with the boundary's residual stream quantized: its own
   * quantizer where it has one, otherwise one calibrated now on {@code calibration}, with layer-norm input factors
   * (plans whose layer-norm inputs stay float have none). The plan unchanged when the split does not fit the model.
   *
   * @throws VitqException if the plan lacks the boundary and there are no calibration images to find it from
   */
  public static QuantPlan withBoundary(Model model, VitStructure vit, QuantPlan plan, int split,
      ImageDataset calibration, Calibrator.Settings settings, Progress progress) throws VitqException {
    if (split < 1 || split >= vit.blocks().size() || plan.entry(vit.blocks().get(split).input()).isPresent()) {
      return plan;
    }
    if (calibration == null) {
      throw new VitqException("The plan leaves the input of block " + (split + 1) + " in float; pass --calib DIR "
          + "so that the boundary, where it crosses as levels, is calibrated.");
    }
    List<QuantSite> site = QuantSites.withBoundary(List.of(), vit, plan.scheme(), split);
    Calibrator.Result calibrated = Calibrator.calibrate(model, vit.input(), site, plan.modelSha256(), calibration,
        settings, progress);
    PlanEntry boundary = calibrated.plan().entries().get(0);
    return plan.withAdded(boundary.with(Calibrator.streamQuantizer(calibrated.stats().get(boundary.tensor()),
        boundary.quantizer().bits())));
  }

  /**
   * The plan with the boundary's residual stream quantized with layer-norm input factors, whatever the scheme's
   * default: it crosses as levels for every reader, and one range for it clips its wide channels (W8A8 split after
   * block 6: agreement with FP32 0.9866 with one range, 0.9896 with factors). The pair still adds one quantization to
   * the single quantized model, at the boundary.
   */
  public static QuantPlan boundaryWithFactors(Calibrator.Result calibrated, VitStructure vit, int split) {
    QuantPlan plan = calibrated.plan();
    if (split < 1 || split >= vit.blocks().size()) {
      return plan; // Split refuses it, in its own words.
    }
    String boundary = vit.blocks().get(split).input();
    return plan.entry(boundary).map(e -> plan.withUpdated(List.of(e.with(Calibrator.streamQuantizer(
        calibrated.stats().get(boundary), e.quantizer().bits()))))).orElse(plan);
  }
}
