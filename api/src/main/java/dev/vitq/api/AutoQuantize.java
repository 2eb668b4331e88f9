package dev.vitq.api;

import dev.vitq.api.report.ParetoPoint;
import dev.vitq.api.report.ReportPages;
import dev.vitq.api.report.Reports;
import dev.vitq.api.report.Sensitivity;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.ModelFiles;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.QuantSite;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.WeightCorrection;
import dev.vitq.quantizer.search.AutoSearch;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * {@code quantize --scheme auto}: the mixed-precision search, and the choice of the point it ships.
 */
final class AutoQuantize {
  private AutoQuantize() {}

  /**
   * The mixed-precision space of the model from one calibration pass over {@code data}: what the search and the
   * accuracy budget choose points of.
   */
  static MixedPrecision space(QuantizeRequest r, LoadedModel m, String sha, ImageDataset data,
      InferenceSession.Config session, Progress progress) throws VitqException {
    Model model = m.model();
    VitStructure vit = m.vit();
    List<QuantSite> sites = MixedPrecision.sites(vit);
    Calibrator.Result calibrated = Calibrator.calibrate(model, vit.input(), sites, sha, data,
        new Calibrator.Settings(Scheme.W8A8, r.method(), Batches.runBatch(model, r.batchSize()), r.seed(), session),
        progress);
    MixedPrecision space = MixedPrecision.of(model, vit, sites, sha, calibrated.stats(),
        calibrated.plan().calibrationImages(), data.preprocessing(), r.method(), r.seed(), session);
    return space;
  }

  /**
   * The mixed-precision search: one calibration pass, NSGA-II over the bits, then the most accurate front point within
   * the budgets (highest agreement on the held-out images, then lowest loss) is written; when none fits, nothing is.
   */
  static Reports.Quantize quantize(QuantizeRequest r, LoadedModel m, String source, String sha, ImageDataset data,
      InferenceSession.Config session, Progress progress, long t0) throws VitqException {
    Model model = m.model();
    VitStructure vit = m.vit();
    MixedPrecision space = space(r, m, sha, data, session, progress);
    long t1 = System.nanoTime();
    // The loss is Evol-Q's, with its options (--objective, --temperature).
    AutoSearch.Settings settings = r.autoSettings().withSeed(r.seed())
        .withObjective(r.searchSettings().objective(), r.searchSettings().temperature());
    AutoSearch.Result result = AutoSearch.search(model, vit, space, data, settings, session,
        plan -> m.ship(m.model(), source, sha, plan, r.target()), progress);
    AutoSearch.Point best = null;
    List<Reports.FrontPoint> front = new ArrayList<>();
    for (AutoSearch.Point p : result.front()) {
      boolean fits = fits(r, p);
      if (fits && (best == null || better(p, best))) {
        best = p;
      }
      front.add(new Reports.FrontPoint(p.name(), p.bytes(), p.loss(), p.latencyMillis(),
          Double.isNaN(p.agreement()) ? null : p.agreement(), fits));
    }
    if (best == null) {
      AutoSearch.Point smallest = result.front().stream()
          .min(Comparator.comparingLong(AutoSearch.Point::bytes)).orElseThrow();
      String latency = r.maxLatencyMillis() > 0 ? String.format(" and %.2f ms", r.maxLatencyMillis()) : "";
      AutoSearch.Point fastest = result.front().stream()
          .min(Comparator.comparingDouble(AutoSearch.Point::latencyMillis)).orElseThrow();
      throw new VitqException(String.format("No mixed-precision point fits in %,d bytes%s: the smallest the search "
          + "reached is %,d bytes (%s)%s.", r.maxBytes(), latency, smallest.bytes(), smallest.name(),
          r.maxLatencyMillis() > 0 ? String.format(" and the fastest %.2f ms at batch 1 on this machine",
              fastest.latencyMillis()) : ""));
    }
    QuantPlan plan = best.plan();
    Model corrected;
    Model quantized;
    Reports.Budget budget = null;
    if (r.maxDrop() != null) {
      // Bytes first: the point chosen within --max-bytes is raised, part by part, only as far as the bytes allow.
      AccuracyBudget.Raised raised = AccuracyBudget.raise(r, m, source, sha, data, space, best.genes(), best.name(),
          r.maxBytes(), session, progress);
      plan = raised.plan();
      corrected = raised.corrected();
      quantized = raised.shipped();
      budget = raised.report();
    } else {
      // The candidates were scored with weights rounded to nearest, which ranks them as well and costs no Hessian
      // per candidate; the point shipped takes the plan's weight corrections (GPTQ), as export --plan does.
      corrected = WeightCorrection.apply(model, vit.input(), plan, data, new Calibrator.Settings(Scheme.AUTO,
          r.method(), Batches.runBatch(model, r.batchSize()), r.seed(), session, plan.weightCorrections()), progress);
      quantized = m.ship(corrected, source, sha, plan, r.target());
    }
    if (r.planOut() != null) {
      AtomicFile.write(r.planOut(), plan.toJson().getBytes(StandardCharsets.UTF_8));
    }
    long t2 = System.nanoTime();
    List<ModelFiles.Written> written = ModelFiles.writeDeployable(quantized, r.output(), r.format(),
        r.target());
    List<Reports.FrontPoint> uniform = result.uniform().stream().map(p -> new Reports.FrontPoint(p.name(), p.bytes(),
        p.loss(), null, null, p.bytes() <= r.maxBytes())).toList();
    Reports.Auto auto = new Reports.Auto(r.maxBytes(), r.maxLatencyMillis() > 0 ? r.maxLatencyMillis() : null,
        best.name(), List.copyOf(front), uniform, result.evaluations(), result.searchImages(),
        result.heldOutImages(), result.searchSeconds(), result.fp32PassSeconds(), result.costRatio());
    Reports.Quantize done = new Reports.Quantize(source, sha, written.get(0).path().toString(),
        written.get(0).bytes(), Scheme.AUTO.cliName(), r.method().cliName(), plan.search(), r.seed(),
        plan.entries().size(), plan.calibrationImages(), data.skipped(), millis(t0, t1), millis(t1, t2),
        millis(t0, System.nanoTime()), r.planOut() == null ? null : r.planOut().toString(), null, true, null, auto,
        budget);
    if (r.reportDir() != null) {
      List<ParetoPoint> pareto = result.front().stream().map(p -> new ParetoPoint(p.name(),
          p.bytes(), p.latencyMillis(), Double.isNaN(p.agreement()) ? 0 : p.agreement())).toList();
      ReportPages.quantize(r.reportDir(), r.reportSettings(done), done, Sensitivity.of(model, corrected, plan, data,
          session, vit.blocks().size(), r.seed()), null, pareto);
    }
    return done;
  }

  /**
   * Higher held-out agreement, then lower loss: on the shared model the search batch's InfoNCE separates points by
   * less than its noise (a mixed W4 point scored 1.810 against W4A8's 1.849, yet agreed with the float model on 0.936
   * of the 5,000 validation images against 0.961), while the held-out images were never searched on.
   */
  private static boolean better(AutoSearch.Point p, AutoSearch.Point than) {
    double a = Double.isNaN(p.agreement()) ? -1 : p.agreement();
    double b = Double.isNaN(than.agreement()) ? -1 : than.agreement();
    return a != b ? a > b : p.loss() < than.loss();
  }

  private static boolean fits(QuantizeRequest r, AutoSearch.Point p) {
    return p.bytes() <= r.maxBytes() && (r.maxLatencyMillis() <= 0 || p.latencyMillis() <= r.maxLatencyMillis());
  }

  private static long millis(long from, long to) {
    return (to - from) / 1_000_000;
  }
}
