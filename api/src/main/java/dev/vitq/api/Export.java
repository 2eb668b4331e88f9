package dev.vitq.api;

import dev.vitq.api.report.ReportPages;
import dev.vitq.api.report.Reports;
import dev.vitq.api.report.Sensitivity;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.Sha256;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.QuantSites;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.WeightCorrection;
import dev.vitq.split.Reduction;
import dev.vitq.split.SplitExport;
import dev.vitq.split.SplitRequest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The export job: check the options, get a plan (calibrated, or read and its weight corrections redone), then let the
 * split module write the device/cloud bundle, and report it.
 */
final class Export {
  private Export() {}

  /**
   * Quantizes a float ViT and splits it after {@code split} blocks into a bundle ({@code Vitq.export}), then writes
   * {@code report.html} in {@code reportDir} (null: no report): the settings, the bundle's bytes against its agreement
   * with the float model and, given calibration images, per-block sensitivity.
   *
   * @throws VitqException if the model, the images, the plan or the options cannot be used
   */
  static Reports.Export export(ExportRequest r, Progress progress, Path reportDir) throws VitqException {
    long t0 = System.nanoTime();
    int given = (r.keepTokens() != 0 ? 1 : 0) + (r.pool() != 0 ? 1 : 0) + (r.merge() != 0 ? 1 : 0);
    if (given > 1) {
      throw new VitqException("Pass one of --keep-tokens, --pool and --merge, not several.");
    }
    if (r.maxBytes() != 0 && given > 0) {
      throw new VitqException("--max-bytes chooses the token reduction itself; leave out --keep-tokens, --pool and "
          + "--merge.");
    }
    if (r.maxBytes() < 0) {
      throw new VitqException("--max-bytes must be positive, got " + r.maxBytes() + ".");
    }
    if (r.scheme() == Scheme.AUTO && r.plan() == null) {
      throw new VitqException("export calibrates one uniform scheme; for mixed precision run quantize --scheme auto "
          + "--plan-out PLAN.json and pass --plan PLAN.json.");
    }
    if (r.scheme().dataFree()) {
      throw new VitqException("export splits a calibrated model, whose boundary is coded as 8-bit levels on ranges "
          + "measured on images, and " + r.scheme().cliName() + " is written without calibration; split with "
          + "--scheme w8a8 (or another calibrated scheme), or quantize the whole model with quantize --scheme "
          + r.scheme().cliName() + ".");
    }
    LoadedModel m = LoadedModel.load(r.model(), r.preprocess());
    if (m.vit() == null) {
      throw new VitqException("vitq splits a ViT after one of its blocks, and " + m.recognition().reason()
          .replaceFirst("\\.$", "") + ".");
    }
    String sha = Sha256.of(r.model());
    Preprocessing pre = r.preprocess().resolve(m.model());
    InferenceSession.Config session = InferenceSession.Config.defaults().withThreads(r.threads());
    if (r.maxBytes() != 0 && r.calibration() == null) {
      throw new VitqException("--max-bytes fits the boundary coding on calibration images: pass --calib DIR too.");
    }
    // Opened once: the weight corrections, the boundary budget and the report all read the same images.
    ImageDataset calib = r.calibration() == null ? null : ImageDataset.open(r.calibration(), pre);
    QuantPlan plan;
    Model shipped = m.model();
    if (r.plan() != null) {
      try {
        plan = QuantPlan.fromJson(Files.readString(r.plan()));
      } catch (IOException e) {
        throw new VitqException("Cannot read the plan " + r.plan() + ": " + e.getMessage() + ".", e);
      }
      if (!plan.modelSha256().equals(sha)) {
        throw new VitqException("The plan " + ModelFiles.fileName(r.plan()) + " was made for another model (SHA-256 "
            + plan.modelSha256() + ").");
      }
      // A plan holds scales, not weights: with calibration images the weight corrections it records are redone on
      // its scales; without them its weights are rounded to nearest.
      Calibrator.Settings settings = new Calibrator.Settings(plan.scheme(), plan.method(), Batches.runBatch(
          m.model(), r.batchSize()), r.seed(), session, plan.weightCorrections());
      if (calib != null) {
        shipped = WeightCorrection.apply(m.model(), m.vit().input(), plan, calib,
            LoadedModel.correctionsFor(settings, r.target()), progress);
      }
      plan = SplitExport.withBoundary(shipped, m.vit(), plan, r.split(), calib, settings, progress);
    } else {
      if (calib == null) {
        throw new VitqException("Pass --calib DIR (or --plan PLAN.json): exporting needs calibration images.");
      }
      Calibrator.Settings settings = new Calibrator.Settings(r.scheme(), r.method(), Batches.runBatch(m.model(),
          r.batchSize()), r.seed(), session);
      Calibrator.Result calibrated = Calibrator.calibrate(m.model(), m.vit().input(), QuantSites.withBoundary(
          QuantSites.of(m.vit(), r.scheme()), m.vit(), r.scheme(), r.split()), sha, calib, settings, progress);
      plan = SplitExport.boundaryWithFactors(calibrated, m.vit(), r.split());
      // The scheme's default weight corrections, as quantize applies them: the pair computes what its model does.
      shipped = WeightCorrection.apply(m.model(), m.vit().input(), plan, calib,
          LoadedModel.correctionsFor(settings, r.target()), progress);
    }
    if (r.fuse() && r.keepTokens() == 0) {
      throw new VitqException("--fuse goes with --keep-tokens below 1.");
    }
    Reduction reduction = r.keepTokens() != 0 ? new Reduction.Attention(r.keepTokens(), r.fuse())
        : r.pool() != 0 ? new Reduction.Pool(r.pool())
        : r.merge() != 0 ? new Reduction.Merge(r.merge()) : new Reduction.None();
    // The run batch only matters to the budget's choice; a model fixed at more than one image is refused only then.
    int batch = r.maxBytes() != 0 ? Batches.runBatch(m.model(), r.batchSize()) : r.batchSize();
    SplitExport.Result split = SplitExport.write(new SplitRequest(r.bundle(), r.model(), sha, m.model(), shipped,
        m.vit(), plan, pre, r.split(), reduction, r.floatCloud(), r.maxBytes(), r.format(), r.target()), calib,
        r.seed(), session, batch, progress);
    List<Reports.Export.Tried> tried = split.tried().stream()
        .map(c -> new Reports.Export.Tried(c.configuration(), c.tokens(), c.bytesPerImage(), c.score())).toList();
    Reports.Export done = new Reports.Export(r.bundle().toString(), r.model().toString(), plan.scheme().cliName(),
        r.split(), m.vit().blocks().size(), split.reduction().kind(), split.tokensIn(), split.tokensOut(),
        split.bytesPerImage(), split.float32BytesPerImage(), split.deviceBytes(), split.cloudBytes(),
        millis(t0, System.nanoTime()), split.configuration(), split.calibratedScore(), tried, split.measure());
    if (reportDir != null) {
      ReportPages.export(reportDir, r.reportSettings(done), done, calib == null ? List.of() : Sensitivity.of(m.model(),
          shipped, plan, calib, session, m.vit().blocks().size(), r.seed()), calib == null ? null
          : ReportPages.bundleAgreement(m.model(), r.bundle(), calib, session, r.seed()), Sensitivity.IMAGES);
    }
    return done;
  }

  private static long millis(long from, long to) {
    return (to - from) / 1_000_000;
  }
}
