package dev.vitq.api;

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
import dev.vitq.models.canon.Float32;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.WeightCorrection;
import dev.vitq.quantizer.search.BudgetSearch;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Function;

/**
 * {@code quantize --max-drop D --val DIR}: quantization under an accuracy budget. The point of the scheme (or the one
 * {@code --scheme auto} chose) is measured on held-out images, and while its drop from the float model passes D the
 * parts that lose most are raised ({@link BudgetSearch}); what ships is measured as it ships (GPTQ'd, lowered,
 * deployed), one pass over the held-out images per step.
 */
final class AccuracyBudget {
  private AccuracyBudget() {}

  /**
   * The raised point.
   *
   * @param plan its plan
   * @param corrected the float model with its weights corrected for the plan
   * @param shipped the deployable model
   * @param report what was raised
   */
  record Raised(QuantPlan plan, Model corrected, Model shipped, Reports.Budget report) {}

  /** The options of an accuracy budget, checked before anything is read. */
  static void check(QuantizeRequest r) throws VitqException {
    if (r.maxDrop() == null) {
      if (r.validation() != null || r.validationLimit() != 0) {
        throw new VitqException("--val and --val-limit are the held-out images of an accuracy budget; pass "
            + "--max-drop D too.");
      }
      return;
    }
    double d = r.maxDrop();
    if (Double.isNaN(d) || d < 0 || d >= 1) {
      throw new VitqException("--max-drop must be at least 0 and below 1 (a share of images, or of cosine), got "
          + r.maxDrop() + ".");
    }
    if (r.validation() == null) {
      throw new VitqException("--max-drop measures the drop on held-out images; pass --val DIR (images calibration "
          + "does not use).");
    }
    if (r.validationLimit() < 0) {
      throw new VitqException("--val-limit must be positive, got " + r.validationLimit() + ".");
    }
    if (!r.search().equals("none")) {
      throw new VitqException("--max-drop raises parts of a plan and --search " + r.search() + " searches one "
          + "scheme's scales; run them one at a time (--search none with --max-drop).");
    }
    if (r.scheme().dataFree() || r.scheme().activationBits() > 8) {
      throw new VitqException("--max-drop raises the parts of a w8a8, w6a6, w4a8, w4a4 or auto plan, and --scheme "
          + r.scheme().cliName() + " is not one; quantize with one of them.");
    }
    if (r.techniques() != null) {
      throw new VitqException("--max-drop gives each part the quantizers of the scheme its bits come from; leave out "
          + "--quantizers.");
    }
    if (r.maxLatencyMillis() != 0) {
      throw new VitqException("--max-drop raises parts without timing them again, so it cannot keep "
          + "--max-latency-ms; pass one of them.");
    }
  }

  /**
   * The model's own checks: raising parts needs a ViT's blocks, a dynamic batch and float32 images.
   *
   * @throws VitqException if the model cannot be raised by parts
   */
  static void checkModel(LoadedModel m, String name) throws VitqException {
    if (m.vit() == null) {
      throw new VitqException("--max-drop raises the precision of a ViT's blocks, and " + m.recognition().reason()
          .replaceFirst("\\.$", "") + "; quantize it without a budget.");
    }
    if (Batches.fixedBatch(m.model()) > 0) {
      throw new VitqException("--max-drop runs many images at once, and " + name + "'s input has a fixed batch of "
          + Batches.fixedBatch(m.model()) + "; export it with a dynamic batch to quantize it under a budget.");
    }
    if (Float32.isHalf(m.original())) {
      throw new VitqException("--max-drop measures parts on float32 images, and " + name + " takes float16 ones; "
          + "quantize it without a budget.");
    }
  }

  /** The point of the mixed-precision space a uniform scheme starts from, and its name. */
  static MixedPrecision.Genes start(MixedPrecision space, Scheme scheme) {
    return switch (scheme) {
      case W8A8 -> space.uniform(8, 8);
      case W4A8 -> space.uniform(4, 8);
      // The space has no 6-bit weights: W8A6 stands for W6A6 at the same size (int8 storage), rounding less.
      case W6A6 -> space.uniform(8, 6);
      case W4A4 -> space.uniform(4, 4);
      case AUTO -> throw new IllegalArgumentException("--scheme auto starts from the point its search chose");
      // check() refuses them: the space has no 16-bit groups, and the schemes without calibration no plan.
      case W8A16, W4A16, W8_DYNAMIC, FP16 -> throw new IllegalArgumentException("No budget start for " + scheme);
    };
  }

  /**
   * Measures {@code start} on the held-out images and raises parts until the drop is within the budget.
   *
   * @param startName the starting point's name, as the report says it
   * @param maxBytes the size the raising must stay within (0: any)
   * @throws VitqException if the budget cannot be met (nothing is written), or images or ONNX Runtime fail
   */
  static Raised raise(QuantizeRequest r, LoadedModel m, String source, String sha, ImageDataset calib,
      MixedPrecision space, MixedPrecision.Genes start, String startName, long maxBytes,
      InferenceSession.Config session, Progress progress) throws VitqException {
    long t0 = System.nanoTime();
    Model model = m.model();
    ImageDataset held = heldOut(r, calib);
    int batch = Batches.runBatch(model, r.batchSize());
    Scorer scorer = Scorer.of(model, m.vit().classifier(), held, batch, session, progress);
    Sensitivity.Sample sample = Sensitivity.Sample.of(model, calib, session, r.seed());
    // The weight corrections a plan records, as they hold on the target.
    Function<QuantPlan, Calibrator.Settings> corrections = p -> LoadedModel.correctionsFor(new Calibrator.Settings(
        Scheme.AUTO, r.method(), batch, r.seed(), session, p.weightCorrections()), r.target());
    Model[] lastCorrected = {null};
    Model[] lastShipped = {null};
    QuantPlan[] lastPlan = {null};
    BudgetSearch.Measure measure = (plan, bytesLimit) -> {
      Model corrected = WeightCorrection.apply(model, m.vit().input(), plan, calib, corrections.apply(plan),
          Progress.NONE);
      Model shipped = m.ship(corrected, source, sha, plan, r.target());
      long bytes = OnnxWriter.toBytes(shipped).length;
      if (bytesLimit > 0 && bytes > bytesLimit) {
        return new BudgetSearch.Measured(bytes, Double.NaN, Double.NaN);
      }
      lastCorrected[0] = corrected;
      lastShipped[0] = shipped;
      lastPlan[0] = plan;
      double score = scorer.score(shipped);
      return new BudgetSearch.Measured(bytes, scorer.drop(score), score);
    };
    BudgetSearch.Result result = BudgetSearch.search(space, start, r.maxDrop(), maxBytes,
        part -> sample.row("part", part).sqnrDb(), measure, progress);
    List<Reports.Raise> raised = result.steps().stream().map(s -> new Reports.Raise(s.part(), s.rung().description(),
        s.sqnrDb(), s.bytes(), s.score(), s.drop())).toList();
    if (!result.met()) {
      String how = maxBytes > 0 ? String.format(Locale.ROOT, "raising what fits in %,d bytes (%d raises; %d more "
          + "would not fit)", maxBytes, raised.size(), result.rejected())
          : String.format(Locale.ROOT, "raising every part it could (%d raises, %d parts left in float)",
          raised.size(), result.floatGroups().size());
      throw new VitqException(String.format(Locale.ROOT, "The accuracy budget --max-drop %s cannot be met: after %s, "
          + "the drop in %s on %d images of %s is still %.4f (float %.4f, %s %.4f); nothing was written.",
          r.maxDrop(), how, scorer.measure(), scorer.images(), r.validation(), result.end().drop(),
          scorer.floatScore(), startName, result.start().score()));
    }
    Model corrected = lastCorrected[0];
    Model shipped = lastShipped[0];
    if (!result.plan().equals(lastPlan[0])) {
      // The last measure was a raise over the byte budget: ship the point kept again.
      corrected = WeightCorrection.apply(model, m.vit().input(), result.plan(), calib,
          corrections.apply(result.plan()), Progress.NONE);
      shipped = m.ship(corrected, source, sha, result.plan(), r.target());
    }
    Reports.Budget report = new Reports.Budget(r.maxDrop(), scorer.measure(), r.validation().toString(),
        scorer.images(), scorer.floatScore(), startName, result.start().bytes(), result.start().score(),
        result.start().drop(), result.end().bytes(), result.end().score(), result.end().drop(), raised,
        result.rejected(), 1 + result.evaluations(), (System.nanoTime() - t0) / 1e9);
    return new Raised(result.plan(), corrected, shipped, report);
  }

  /**
   * A uniform scheme under an accuracy budget: one calibration pass, the mixed-precision space built from it, the
   * scheme's point raised until the budget holds, then the model, the plan and the report written as {@code quantize}
   * writes them.
   *
   * @throws VitqException if the budget cannot be met (nothing is written), or images or ONNX Runtime fail
   */
  static Reports.Quantize quantize(QuantizeRequest r, LoadedModel m, String source, String sha, ImageDataset data,
      InferenceSession.Config session, Progress progress, long t0) throws VitqException {
    Model model = m.model();
    VitStructure vit = m.vit();
    MixedPrecision space = AutoQuantize.space(r, m, sha, data, session, progress);
    long t1 = System.nanoTime();
    Raised raised = raise(r, m, source, sha, data, space, start(space, r.scheme()), r.scheme().cliName(), 0, session,
        progress);
    QuantPlan plan = raised.plan();
    if (r.planOut() != null) {
      AtomicFile.write(r.planOut(), plan.toJson().getBytes(StandardCharsets.UTF_8));
    }
    long t2 = System.nanoTime();
    List<ModelFiles.Written> written = ModelFiles.writeDeployable(raised.shipped(), r.output(), r.format());
    Reports.Quantize done = new Reports.Quantize(source, sha, written.get(0).path().toString(),
        written.get(0).bytes(), r.scheme().cliName(), r.method().cliName(), plan.search(), r.seed(),
        plan.entries().size(), plan.calibrationImages(), data.skipped(), (t1 - t0) / 1_000_000,
        (t2 - t1) / 1_000_000, (System.nanoTime() - t0) / 1_000_000,
        r.planOut() == null ? null : r.planOut().toString(), null, true, null, null, raised.report());
    if (r.reportDir() != null) {
      ReportPages.quantize(r.reportDir(), r.reportSettings(done), done, Sensitivity.of(model, raised.corrected(),
          plan, data, session, vit.blocks().size(), r.seed()), null, List.of());
    }
    return done;
  }

  /**
   * The held-out images, a seeded sample of them with {@code --val-limit}; none may be a calibration image.
   *
   * @throws VitqException if the folder cannot be used or shares images with calibration
   */
  static ImageDataset heldOut(QuantizeRequest r, ImageDataset calib) throws VitqException {
    ImageDataset held = ImageDataset.open(r.validation(), calib.preprocessing());
    if (r.validationLimit() > 0) {
      held = held.sample(r.validationLimit(), r.seed());
    }
    Set<Path> calibrationFiles = new HashSet<>();
    for (ImageDataset.Entry e : calib.entries()) {
      calibrationFiles.add(real(e.file()));
    }
    long shared = held.entries().stream().filter(e -> calibrationFiles.contains(real(e.file()))).count();
    if (shared > 0) {
      throw new VitqException(String.format(Locale.ROOT, "--val shares %d of its %d images with --calib; the drop "
          + "must be measured on images calibration did not see.", shared, held.size()));
    }
    return held;
  }

  private static Path real(Path p) {
    try {
      return p.toRealPath();
    } catch (IOException e) {
      return p.toAbsolutePath().normalize();
    }
  }

  /** The held-out measure: the float model's outputs once, then one pass per quantized model. */
  private static final class Scorer {
    private final boolean classifier;
    private final boolean labelled;
    private final ImageDataset images;
    private final int batch;
    private final InferenceSession.Config session;
    private final Evaluation.Predictions reference;
    private final Evaluation.Embeddings referenceEmbeddings;

    private Scorer(boolean classifier, ImageDataset images, int batch, InferenceSession.Config session,
        Evaluation.Predictions reference, Evaluation.Embeddings referenceEmbeddings) {
      this.classifier = classifier;
      this.labelled = !images.classes().isEmpty();
      this.images = images;
      this.batch = batch;
      this.session = session;
      this.reference = reference;
      this.referenceEmbeddings = referenceEmbeddings;
    }

    static Scorer of(Model model, boolean classifier, ImageDataset images, int batch,
        InferenceSession.Config session, Progress progress) throws VitqException {
      try (InferenceSession s = InferenceSession.of(model, session)) {
        return classifier
            ? new Scorer(true, images, batch, session, Evaluation.predict(s, images, batch, progress), null)
            : new Scorer(false, images, batch, session, null, Evaluation.embed(s, images, batch, progress));
      }
    }

    String measure() {
      return !classifier ? "mean cosine" : labelled ? "top-1" : "agreement";
    }

    int images() {
      return classifier ? reference.predicted().length : referenceEmbeddings.vectors().length;
    }

    double floatScore() {
      return classifier && labelled ? reference.top1() : 1;
    }

    /** The measure of a model on the held-out images. */
    double score(Model quantized) throws VitqException {
      try (InferenceSession s = InferenceSession.of(quantized, session)) {
        if (!classifier) {
          return Evaluation.mean(Evaluation.embed(s, images, batch, Progress.NONE).cosines(referenceEmbeddings));
        }
        Evaluation.Predictions p = Evaluation.predict(s, images, batch, Progress.NONE);
        return labelled ? p.top1() : p.agreement(reference);
      }
    }

    /** How much worse than the float model a measure is. */
    double drop(double score) {
      return floatScore() - score;
    }
  }
}
