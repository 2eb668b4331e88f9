package dev.vitq.api;

import dev.vitq.api.report.ReportPages;
import dev.vitq.api.report.Reports;
import dev.vitq.api.report.SearchReport;
import dev.vitq.api.report.Sensitivity;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.DemoModel;
import dev.vitq.converter.ModelFiles;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.Float32;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.QuantSite;
import dev.vitq.quantizer.QuantSites;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.WeightCorrection;
import dev.vitq.quantizer.search.EvolQ;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * The quantize job: calibrate a float model (or the demo model) on images, optionally search its scales (Evol-Q),
 * and write the deployable quantized model, its plan and its report. {@code --scheme auto} goes to
 * {@link AutoQuantize}, which chooses the mixed-precision point.
 */
final class Quantize {
  private Quantize() {}

  /** The searches {@link #quantize} knows. */
  static final List<String> SEARCHES = List.of("none", "evolq");

  /** Where a search writing {@code output} saves its state after every block: beside the output. */
  static Path stateFile(Path output) {
    return output.resolveSibling(ModelFiles.fileName(output) + ".evolq-state.json");
  }

  /**
   * Calibrates a float ViT, builds its quantization plan and writes the deployable quantized model: integer weights,
   * QuantizeLinear/DequantizeLinear around every quantized activation, the source's metadata kept and a
   * {@code vitq} provenance entry added. The output (and the plan) appear complete or not at all.
   *
   * @throws VitqException if the model, the images or the options cannot be used
   */
  static Reports.Quantize quantize(QuantizeRequest r, Progress progress) throws VitqException {
    long t0 = System.nanoTime();
    if (!SEARCHES.contains(r.search())) {
      throw new VitqException("Unknown search '" + r.search() + "', expected one of " + SEARCHES + ".");
    }
    checkAuto(r);
    AccuracyBudget.check(r);
    if (r.scheme().dataFree()) {
      return DataFreeQuantize.quantize(r, t0);
    }
    Path calib = r.calibration();
    Path demoImages = null;
    if (r.model() != null && calib == null) {
      throw new VitqException("Pass --calib DIR: quantizing " + ModelFiles.fileName(r.model())
          + " needs calibration images.");
    }
    LoadedModel.Source read = LoadedModel.Source.of(r.model(), r.seed(), r.preprocess());
    LoadedModel m = read.loaded();
    String source = read.source();
    String sha = read.sha256();
    if (calib == null) {
      calib = demoImages = DemoModel.calibrationImages(r.seed());
    }
    VitStructure vit = m.vit();
    if (r.maxDrop() != null) {
      AccuracyBudget.checkModel(m, name(r.model()));
    }
    if (r.search().equals("evolq") && Batches.fixedBatch(m.model()) > 0) {
      throw new VitqException("--search evolq runs many images at once, and " + name(r.model())
          + "'s input has a fixed batch of " + Batches.fixedBatch(m.model())
          + "; export it with a dynamic batch to search it.");
    }
    if (vit == null && r.search().equals("evolq")) {
      throw new VitqException("--search evolq searches a ViT's blocks, and " + m.recognition().reason()
          .replaceFirst("\\.$", "") + "; quantize it with --search none.");
    }
    if (r.scheme() == Scheme.AUTO) {
      if (vit == null) {
        throw new VitqException("--scheme auto chooses bits per block of a ViT, and " + m.recognition().reason()
            .replaceFirst("\\.$", "") + "; quantize it with a uniform scheme.");
      }
      if (Batches.fixedBatch(m.model()) > 0) {
        throw new VitqException("--scheme auto runs many images at once, and " + name(r.model())
            + "'s input has a fixed batch of " + Batches.fixedBatch(m.model())
            + "; export it with a dynamic batch to search it.");
      }
      if (Float32.isHalf(m.original())) {
        throw new VitqException("--scheme auto scores candidates on float32 images, and " + name(r.model())
            + " takes float16 ones; quantize it with a uniform scheme.");
      }
    }
    Model model = m.model();
    try {
      Preprocessing pre = r.preprocess().resolve(model);
      ImageDataset data = ImageDataset.open(calib, pre);
      InferenceSession.Config session = InferenceSession.Config.defaults().withThreads(r.threads());
      if (r.scheme() == Scheme.AUTO) {
        return AutoQuantize.quantize(r, m, source, sha, data, session, progress, t0);
      }
      if (r.maxDrop() != null) {
        return AccuracyBudget.quantize(r, m, source, sha, data, session, progress, t0);
      }
      List<QuantSite> sites = vit != null ? QuantSites.of(vit, r.scheme(), r.techniquesOrDefaults())
          : QuantSites.generic(model, r.scheme());
      if (sites.isEmpty()) {
        throw new VitqException(ModelFiles.fileName(r.model() == null ? Path.of(source) : r.model())
            + " has no MatMul, Gemm or Conv with a constant weight, so there is nothing to quantize.");
      }
      String imageInput = PreprocessFlags.imageInput(model).name();
      Calibrator.Settings settings = new Calibrator.Settings(r.scheme(), r.method(),
          Batches.runBatch(model, r.batchSize()), r.seed(), session, r.techniquesOrDefaults());
      Calibrator.Result calibrated = Calibrator.calibrate(model, imageInput, sites, sha, data, settings, progress);
      QuantPlan plan = calibrated.plan();
      // GPTQ and bias correction change the float weights and biases; the search, the lowering and the report all
      // work on the corrected model, so they see what ships.
      model = WeightCorrection.apply(model, imageInput, plan, data, LoadedModel.correctionsFor(settings, r.target()),
          progress);
      long t1 = System.nanoTime();
      Reports.Search searched = null;
      EvolQ.Result searchResult = null;
      if (r.search().equals("evolq")) {
        Path state = stateFile(r.output());
        EvolQ.Result result = EvolQ.search(model, m.model(), vit, plan, data, r.searchSettings().withSeed(r.seed()),
            session, state, r.resume(), progress, EvolQ.Listener.NONE);
        plan = result.plan();
        searchResult = result;
        if (r.reportDir() != null) {
          SearchReport.write(r.reportDir(), result, r.searchSettings().withSeed(r.seed()));
        }
        searched = SearchReport.summary(result, r.searchSettings(), r.reportDir());
      }
      long t2 = System.nanoTime();
      Model quantized = m.ship(model, source, sha, plan, r.target());
      if (r.planOut() != null) {
        AtomicFile.write(r.planOut(), plan.toJson().getBytes(StandardCharsets.UTF_8));
      }
      List<ModelFiles.Written> written = ModelFiles.writeDeployable(quantized, r.output(), r.format(),
        r.target());
      // The search is done and its result written: its saved state has nothing left to resume.
      AtomicFile.deleteQuietly(stateFile(r.output()));
      Path primary = written.get(0).path();
      long bytes = written.get(0).bytes();
      Reports.Quantize done = new Reports.Quantize(source, sha, primary.toString(), bytes, r.scheme().cliName(),
          r.method().cliName(), plan.search(), r.seed(), plan.entries().size(), plan.calibrationImages(),
          data.skipped(),
          millis(t0, t1), millis(t1, t2), millis(t0, System.nanoTime()),
          r.planOut() == null ? null : r.planOut().toString(), searched, m.recognition().recognised(),
          m.recognition().reason(), null);
      if (r.reportDir() != null) {
        // A search that measures candidates passes them as ParetoPoints instead of List.of().
        ReportPages.quantize(r.reportDir(), r.reportSettings(done), done, Sensitivity.of(m.model(), model, plan, data,
            session, vit == null ? 0 : vit.blocks().size(), r.seed()), searchResult, List.of());
      }
      return done;
    } finally {
      if (demoImages != null) {
        DemoModel.delete(demoImages);
      }
    }
  }

  /** The options of the mixed-precision search, checked before anything is read. */
  private static void checkAuto(QuantizeRequest r) throws VitqException {
    boolean auto = r.scheme() == Scheme.AUTO;
    if (!auto && (r.maxBytes() != 0 || r.maxLatencyMillis() != 0)) {
      throw new VitqException("--max-bytes and --max-latency-ms are the budgets of the mixed-precision search; pass "
          + "--scheme auto too.");
    }
    if (!auto) {
      return;
    }
    if (r.maxBytes() <= 0) {
      throw new VitqException("--scheme auto needs --max-bytes N (a positive size in bytes): it ships the most "
          + "accurate point of its front that fits.");
    }
    if (r.maxLatencyMillis() < 0 || Double.isNaN(r.maxLatencyMillis())) {
      throw new VitqException("--max-latency-ms must be positive, got " + r.maxLatencyMillis() + ".");
    }
    if (!r.search().equals("none")) {
      throw new VitqException("--scheme auto searches bit widths and --search " + r.search() + " searches one "
          + "scheme's scales; run them one at a time (--search none with --scheme auto).");
    }
    if (r.techniques() != null) {
      throw new VitqException("--scheme auto gives each block the quantizers of the scheme its bits come from; "
          + "leave out --quantizers.");
    }
  }

  private static String name(Path p) {
    return p == null ? DemoModel.NAME : ModelFiles.fileName(p);
  }

  private static long millis(long from, long to) {
    return (to - from) / 1_000_000;
  }
}
