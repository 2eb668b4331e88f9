package dev.vitq.converter;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.Model;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.LocalFunctions;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.canon.Float32;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.QuantSite;
import dev.vitq.quantizer.QuantSites;
import dev.vitq.quantizer.WeightCorrection;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.search.AutoSearch;
import dev.vitq.quantizer.search.EvolQ;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Random;

/**
 * The vitq Java API: what the command line does, callable from a model-build pipeline.
 *
 * {@snippet lang="java" :
 * ModelSummary s = Vitq.inspect(Path.of("vit.onnx"));
 * Vitq.convert(Path.of("vit.onnx"), Path.of("copy.onnx"), OnnxWriter.Placement.AUTO);
 * }
 *
 * <p>Every method reports unusable input as a {@link VitqException} whose message is one sentence.
 */
public final class Vitq {
  private Vitq() {}

  /**
   * A model read from disk and checked, its canonical form (local functions inlined, half precision widened,
   * exporter noise removed: the graph calibration and quantization work on) and what recognition found in it.
   *
   * @param path where it was read from
   * @param original the model as read
   * @param model its canonical form
   * @param recognition its ViT structure, or why it has none
   */
  public record LoadedModel(Path path, Model original, Model model, Recognition recognition) {
    /** The ViT structure, or null when the model is not a ViT vitq recognises. */
    public VitStructure vit() {
      return recognition.vit();
    }
  }

  /**
   * Reads, checks, canonicalises and recognises a model; shapes are folded for the image size the flags or the
   * model's metadata give (else its input's, else the one its position embedding implies).
   *
   * @throws VitqException if the file is not a well-formed ONNX model
   */
  public static LoadedModel load(Path path, PreprocessFlags flags) throws VitqException {
    Objects.requireNonNull(path, "path");
    return canonical(path, fileName(path), OnnxReader.read(path), flags);
  }

  private static LoadedModel canonical(Path path, String name, Model original, PreprocessFlags flags)
      throws VitqException {
    int[] size = flags.imageSize(original);
    Model canonical = Canonicalizer.apply(Float32.apply(LocalFunctions.inline(original, name)), size[0], size[1]);
    return new LoadedModel(path, original, canonical, VitRecognizer.recognize(canonical, name));
  }

  /**
   * Summarises a model: its graph always, its ViT structure when recognised, else the reason.
   *
   * @throws VitqException if the file is not a well-formed ONNX model
   */
  public static ModelSummary inspect(Path path) throws VitqException {
    LoadedModel m = load(path, PreprocessFlags.NONE);
    return ModelSummary.of(fileName(path), m.original(), m.model(), m.recognition());
  }

  /**
   * Re-writes a model through the IR, ViT or not. The output holds every node, attribute, initializer and metadata
   * entry of the input; it appears complete or not at all.
   *
   * @throws VitqException if the input is not a well-formed ONNX model or the output cannot be written
   */
  public static ConvertReport convert(ConvertRequest r) throws VitqException {
    long t0 = System.nanoTime();
    Model model = OnnxReader.read(r.input());
    long t1 = System.nanoTime();
    OnnxWriter.write(model, r.output(), r.placement());
    long t2 = System.nanoTime();
    return new ConvertReport(r.output(), (t1 - t0) / 1e6, (t2 - t1) / 1e6);
  }

  /**
   * What a conversion did.
   *
   * @param output the written model
   * @param importMillis reading and checking the input
   * @param exportMillis writing the output
   */
  public record ConvertReport(Path output, double importMillis, double exportMillis) {}

  static String fileName(Path p) {
    return p.getFileName() == null ? p.toString() : p.getFileName().toString();
  }

  // ---- quantize ----------------------------------------------------------------------------------------------

  /**
   * Calibrates a float ViT, builds its quantization plan and writes the deployable quantized model: integer weights,
   * QuantizeLinear/DequantizeLinear around every quantized activation, the source's metadata kept and a
   * {@code vitq} provenance entry added. The output (and the plan) appear complete or not at all.
   *
   * @throws VitqException if the model, the images or the options cannot be used
   */
  public static Reports.Quantize quantize(QuantizeRequest r, Progress progress) throws VitqException {
    long t0 = System.nanoTime();
    if (!SEARCHES.contains(r.search())) {
      throw new VitqException("Unknown search '" + r.search() + "', expected one of " + SEARCHES + ".");
    }
    checkAuto(r);
    LoadedModel m;
    String source;
    String sha;
    Path calib = r.calibration();
    Path demoImages = null;
    if (r.model() == null) {
      Model demo = DemoModel.model(r.seed());
      m = canonical(null, DemoModel.NAME, demo, r.preprocess());
      source = DemoModel.NAME;
      sha = sha256(OnnxWriter.toBytes(demo));
      if (calib == null) {
        calib = demoImages = DemoModel.calibrationImages(r.seed());
      }
    } else {
      if (calib == null) {
        throw new VitqException("Pass --calib DIR: quantizing " + fileName(r.model()) + " needs calibration images.");
      }
      m = load(r.model(), r.preprocess());
      source = r.model().toString();
      sha = sha256(r.model());
    }
    VitStructure vit = m.vit();
    if (r.search().equals("evolq") && fixedBatch(m.model()) > 0) {
      throw new VitqException("--search evolq runs many images at once, and " + name(r.model())
          + "'s input has a fixed batch of " + fixedBatch(m.model()) + "; export it with a dynamic batch to search it.");
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
      if (fixedBatch(m.model()) > 0) {
        throw new VitqException("--scheme auto runs many images at once, and " + name(r.model())
            + "'s input has a fixed batch of " + fixedBatch(m.model()) + "; export it with a dynamic batch to search "
            + "it.");
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
        return quantizeAuto(r, m, source, sha, data, session, progress, t0);
      }
      List<QuantSite> sites = vit != null ? QuantSites.of(vit, r.scheme(), r.techniquesOrDefaults())
          : QuantSites.generic(model, r.scheme());
      if (sites.isEmpty()) {
        throw new VitqException(fileName(r.model() == null ? Path.of(source) : r.model())
            + " has no MatMul, Gemm or Conv with a constant weight, so there is nothing to quantize.");
      }
      String imageInput = PreprocessFlags.imageInput(model).name();
      Calibrator.Settings settings = new Calibrator.Settings(r.scheme(), r.method(), runBatch(model, r.batchSize()),
          r.seed(), session, r.techniquesOrDefaults());
      Calibrator.Result calibrated = Calibrator.calibrate(model, imageInput, sites, sha, data, settings, progress);
      QuantPlan plan = calibrated.plan();
      // GPTQ and bias correction change the float weights and biases; the search, the lowering and the report all
      // work on the corrected model, so they see what ships.
      model = WeightCorrection.apply(model, imageInput, plan, data, settings, progress);
      long t1 = System.nanoTime();
      Reports.Search searched = null;
      EvolQ.Result searchResult = null;
      if (r.search().equals("evolq")) {
        Path state = stateFile(r.output());
        EvolQ.Result result = EvolQ.search(model, vit, plan, data, r.searchSettings().withSeed(r.seed()), session,
            state, r.resume(), progress, EvolQ.Listener.NONE);
        plan = result.plan();
        searchResult = result;
        if (r.reportDir() != null) {
          SearchReport.write(r.reportDir(), result, r.searchSettings().withSeed(r.seed()));
        }
        searched = SearchReport.summary(result, r.searchSettings(), r.reportDir());
      }
      long t2 = System.nanoTime();
      Model quantized = ship(m, model, source, sha, plan);
      if (r.planOut() != null) {
        AtomicFile.write(r.planOut(), plan.toJson().getBytes(StandardCharsets.UTF_8));
      }
      List<ModelFiles.Written> written = writeDeployable(quantized, r.output(), r.format());
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
        // A search that measures candidates passes them as HtmlReport.ParetoPoints instead of List.of().
        ReportPages.quantize(r.reportDir(), r, done, Sensitivity.of(m.model(), model, plan, data, session,
            vit == null ? 0 : vit.blocks().size(), r.seed()), searchResult, List.of());
      }
      return done;
    } finally {
      if (demoImages != null) {
        DemoModel.delete(demoImages);
      }
    }
  }

  /**
   * The deployable model of a plan on {@code weights} (the source's float model, or it with GPTQ's weights): integer
   * weights, Q/DQ activations, the source's interface, provenance.
   */
  static Model ship(LoadedModel m, Model weights, String source, String sha, QuantPlan plan) throws VitqException {
    Model lowered = QdqLowering.lower(weights, plan, QdqLowering.Mode.DEPLOY);
    return Float32.withInterfaceOf(OrtDeploy.apply(lowered, m.vit(), m.vit() == null ? 0 : m.vit().tokens()), m.original())
        .withProducer("vitq", version())
        .withMetadata("vitq", provenance(source, sha, plan));
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

  /**
   * The mixed-precision search: one calibration pass, NSGA-II over the bits, then the most accurate front point within
   * the budgets (highest agreement on the held-out images, then lowest loss) is written; when none fits, nothing is.
   */
  private static Reports.Quantize quantizeAuto(QuantizeRequest r, LoadedModel m, String source, String sha,
      ImageDataset data, InferenceSession.Config session, Progress progress, long t0) throws VitqException {
    Model model = m.model();
    VitStructure vit = m.vit();
    List<QuantSite> sites = QuantSites.of(vit, Scheme.W8A8);
    Calibrator.Result calibrated = Calibrator.calibrate(model, vit.input(), sites, sha, data,
        new Calibrator.Settings(Scheme.W8A8, r.method(), runBatch(model, r.batchSize()), r.seed(), session),
        progress);
    MixedPrecision space = MixedPrecision.of(model, vit, sites, sha, calibrated.stats(),
        calibrated.plan().calibrationImages(), data.preprocessing(), r.method(), r.seed(), session);
    long t1 = System.nanoTime();
    // The loss is Evol-Q's, with its options (--objective, --temperature).
    AutoSearch.Settings settings = r.autoSettings().withSeed(r.seed())
        .withObjective(r.searchSettings().objective(), r.searchSettings().temperature());
    AutoSearch.Result result = AutoSearch.search(model, vit, space, data, settings, session,
        plan -> ship(m, m.model(), source, sha, plan), progress);
    AutoSearch.Point best = null;
    List<Reports.FrontPoint> front = new java.util.ArrayList<>();
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
          .min(java.util.Comparator.comparingLong(AutoSearch.Point::bytes)).orElseThrow();
      String latency = r.maxLatencyMillis() > 0 ? String.format(" and %.2f ms", r.maxLatencyMillis()) : "";
      AutoSearch.Point fastest = result.front().stream()
          .min(java.util.Comparator.comparingDouble(AutoSearch.Point::latencyMillis)).orElseThrow();
      throw new VitqException(String.format("No mixed-precision point fits in %,d bytes%s: the smallest the search "
          + "reached is %,d bytes (%s)%s.", r.maxBytes(), latency, smallest.bytes(), smallest.name(),
          r.maxLatencyMillis() > 0 ? String.format(" and the fastest %.2f ms at batch 1 on this machine",
              fastest.latencyMillis()) : ""));
    }
    QuantPlan plan = best.plan();
    // The candidates were scored with weights rounded to nearest, which ranks them as well and costs no Hessian per
    // candidate; the point shipped takes the plan's weight corrections (GPTQ), as export --plan does.
    Model corrected = WeightCorrection.apply(model, vit.input(), plan, data, new Calibrator.Settings(Scheme.AUTO,
        r.method(), runBatch(model, r.batchSize()), r.seed(), session, plan.weightCorrections()), progress);
    Model quantized = ship(m, corrected, source, sha, plan);
    if (r.planOut() != null) {
      AtomicFile.write(r.planOut(), plan.toJson().getBytes(StandardCharsets.UTF_8));
    }
    long t2 = System.nanoTime();
    List<ModelFiles.Written> written = writeDeployable(quantized, r.output(), r.format());
    List<Reports.FrontPoint> uniform = result.uniform().stream().map(p -> new Reports.FrontPoint(p.name(), p.bytes(),
        p.loss(), null, null, p.bytes() <= r.maxBytes())).toList();
    Reports.Auto auto = new Reports.Auto(r.maxBytes(), r.maxLatencyMillis() > 0 ? r.maxLatencyMillis() : null,
        best.name(), List.copyOf(front), uniform, result.evaluations(), result.searchImages(),
        result.heldOutImages(), result.searchSeconds(), result.fp32PassSeconds(), result.costRatio());
    Reports.Quantize done = new Reports.Quantize(source, sha, written.get(0).path().toString(),
        written.get(0).bytes(), Scheme.AUTO.cliName(), r.method().cliName(), plan.search(), r.seed(),
        plan.entries().size(), plan.calibrationImages(), data.skipped(), millis(t0, t1), millis(t1, t2),
        millis(t0, System.nanoTime()), r.planOut() == null ? null : r.planOut().toString(), null, true, null, auto);
    if (r.reportDir() != null) {
      List<HtmlReport.ParetoPoint> pareto = result.front().stream().map(p -> new HtmlReport.ParetoPoint(p.name(),
          p.bytes(), p.latencyMillis(), Double.isNaN(p.agreement()) ? 0 : p.agreement())).toList();
      ReportPages.quantize(r.reportDir(), r, done, Sensitivity.of(model, corrected, plan, data, session,
          vit.blocks().size(), r.seed()), null, pareto);
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

  /**
   * Writes a quantized model in the formats asked for: {@code output} as ONNX and/or its {@code .ort} twin, which
   * then gets the operator list of ONNX Runtime's reduced build beside it ({@code NAME.required_operators.config}).
   */
  static List<ModelFiles.Written> writeDeployable(Model model, Path output, Format format) throws VitqException {
    List<ModelFiles.Written> written = new java.util.ArrayList<>(ModelFiles.write(model, output, format));
    if (format != Format.ONNX) {
      Path ort = ModelFiles.withExtension(output, ".ort");
      written.add(ModelFiles.writeRequiredOperators(ModelFiles.withExtension(output, "." + ModelFiles.REQUIRED_OPERATORS),
          List.of(model), List.of(fileName(ort))));
    }
    return written;
  }

  /** The searches {@link #quantize} knows. */
  public static final List<String> SEARCHES = List.of("none", "evolq");

  /** Where a search writing {@code output} saves its state after every block: beside the output. */
  public static Path stateFile(Path output) {
    return output.resolveSibling(fileName(output) + ".evolq-state.json");
  }

  /** The {@code vitq} metadata entry of a quantized model: where it came from and how it was made. */
  static String provenance(String source, String sha, QuantPlan plan) {
    Map<String, Object> p = new LinkedHashMap<>();
    p.put("vitq_version", version());
    p.put("source", source.replace('\\', '/'));
    p.put("source_sha256", sha);
    p.put("scheme", plan.scheme().cliName());
    p.put("method", plan.method().cliName());
    p.put("search", plan.search());
    p.put("seed", plan.seed());
    p.put("calibration_images", plan.calibrationImages());
    p.put("quantized_tensors", plan.entries().size());
    try {
      return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(p);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("Provenance always serialises", e);
    }
  }

  // ---- export ------------------------------------------------------------------------------------------------

  /**
   * Quantizes a float ViT and splits it after {@code split} blocks into a bundle: {@code device.onnx} (the model's
   * input; embedding and blocks 1..K; outputs the boundary tokens as 8-bit levels and what dequantizes them),
   * {@code cloud.onnx} (inputs named as the device's outputs; blocks K+1..N and the head; outputs the logits) and
   * {@code manifest.json}. The bundle appears complete or not at all.
   *
   * @throws VitqException if the model, the images, the plan or the options cannot be used
   */
  public static Reports.Export export(ExportRequest r, Progress progress) throws VitqException {
    return export(r, progress, null);
  }

  /**
   * {@link #export(ExportRequest, Progress)}, then {@code report.html} in {@code reportDir} (null: no report): the
   * settings, the bundle's bytes against its agreement with the float model and, given calibration images, per-block
   * sensitivity.
   *
   * @throws VitqException if the model, the images, the plan or the options cannot be used
   */
  public static Reports.Export export(ExportRequest r, Progress progress, Path reportDir) throws VitqException {
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
    LoadedModel m = load(r.model(), r.preprocess());
    if (m.vit() == null) {
      throw new VitqException("vitq splits a ViT after one of its blocks, and " + m.recognition().reason()
          .replaceFirst("\\.$", "") + ".");
    }
    String sha = sha256(r.model());
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
        throw new VitqException("The plan " + fileName(r.plan()) + " was made for another model (SHA-256 "
            + plan.modelSha256() + ").");
      }
      // A plan holds scales, not weights: with calibration images the weight corrections it records are redone on
      // its scales; without them its weights are rounded to nearest.
      if (calib != null) {
        shipped = WeightCorrection.apply(m.model(), m.vit().input(), plan, calib, new Calibrator.Settings(
            plan.scheme(), plan.method(), runBatch(m.model(), r.batchSize()), r.seed(), session,
            plan.weightCorrections()), progress);
      }
    } else {
      if (calib == null) {
        throw new VitqException("Pass --calib DIR (or --plan PLAN.json): exporting needs calibration images.");
      }
      Calibrator.Settings settings = new Calibrator.Settings(r.scheme(), r.method(), runBatch(m.model(),
          r.batchSize()), r.seed(), session);
      Calibrator.Result calibrated = Calibrator.calibrate(m.model(), m.vit().input(), QuantSites.of(m.vit(),
          r.scheme()), sha, calib, settings, progress);
      plan = boundaryWithFactors(calibrated, m.vit(), r.split());
      // The scheme's default weight corrections, as quantize applies them: the pair computes what its model does.
      shipped = WeightCorrection.apply(m.model(), m.vit().input(), plan, calib, settings, progress);
    }
    if (r.fuse() && r.keepTokens() == 0) {
      throw new VitqException("--fuse goes with --keep-tokens below 1.");
    }
    Split.Reduction reduction = r.keepTokens() != 0 ? new Split.Reduction.Attention(r.keepTokens(), r.fuse())
        : r.pool() != 0 ? new Split.Reduction.Pool(r.pool())
        : r.merge() != 0 ? new Split.Reduction.Merge(r.merge()) : new Split.Reduction.None();
    BoundaryCodec codec = null;
    BoundaryBudget.Choice choice = null;
    if (r.maxBytes() != 0) {
      choice = BoundaryBudget.choose(m.model(), shipped, m.vit(), plan, r.split(), r.floatCloud(), r.maxBytes(),
          calib, r.seed(), session, runBatch(m.model(), r.batchSize()), progress);
      reduction = choice.best().reduction();
      codec = choice.best().codec();
    }
    Split.Parts parts = Split.of(m.model(), shipped, m.vit(), plan, r.split(), reduction, r.floatCloud(), codec);
    String provenance = provenance(r.model().toString(), sha, plan);
    Model device = parts.device().withProducer("vitq", version()).withMetadata("vitq", provenance);
    Model cloud = parts.cloud().withProducer("vitq", version()).withMetadata("vitq", provenance);
    String kind = kind(reduction);
    Bundle.write(r.bundle(), device, cloud, manifest(r, m, sha, pre, plan, parts, reduction, choice), r.format());
    List<Reports.Export.Tried> tried = choice == null ? List.of() : choice.tried().stream()
        .map(c -> new Reports.Export.Tried(c.describe(), c.tokens(), c.bytesPerImage(), c.agreement())).toList();
    Path deviceFile = r.bundle().resolve(r.format() == Format.ORT ? Bundle.DEVICE_ORT : Bundle.DEVICE);
    Path cloudFile = r.bundle().resolve(r.format() == Format.ORT ? Bundle.CLOUD_ORT : Bundle.CLOUD);
    Reports.Export done = new Reports.Export(r.bundle().toString(), r.model().toString(), plan.scheme().cliName(),
        r.split(), m.vit().blocks().size(), kind, m.vit().tokens(), parts.tokens(), parts.bytesPerImage(),
        4L * m.vit().tokens() * parts.width(), sizeOf(deviceFile), sizeOf(cloudFile), millis(t0, System.nanoTime()),
        describe(reduction) + ", " + (codec == null ? "the plan's " + parts.quantizer().bits() + "-bit levels" : codec),
        choice == null ? null : choice.best().agreement(), tried);
    if (reportDir != null) {
      ReportPages.export(reportDir, r, done, calib == null ? List.of() : Sensitivity.of(m.model(), shipped, plan,
          calib, session, m.vit().blocks().size(), r.seed()), calib == null ? null
          : ReportPages.bundleAgreement(m.model(), r.bundle(), calib, session, r.seed()), Sensitivity.IMAGES);
    }
    return done;
  }

  private static String kind(Split.Reduction reduction) {
    return switch (reduction) {
      case Split.Reduction.None n -> "none";
      case Split.Reduction.Attention a -> "attention";
      case Split.Reduction.Pool p -> "pool";
      case Split.Reduction.Merge g -> "merge";
    };
  }

  /** A reduction in the words of the command line. */
  static String describe(Split.Reduction reduction) {
    return switch (reduction) {
      case Split.Reduction.None n -> "every token";
      case Split.Reduction.Attention a -> "--keep-tokens " + a.keep() + (a.fuse() ? " --fuse" : "");
      case Split.Reduction.Pool p -> "--pool " + p.size();
      case Split.Reduction.Merge g -> "--merge " + g.merged();
    };
  }

  /**
   * The plan with the boundary's residual stream quantized with layer-norm input factors, whatever the scheme's
   * default: it crosses as levels for every reader, and one range for it clips its wide channels (W8A8 split after
   * block 6: agreement with FP32 0.9866 with one range, 0.9896 with factors). The pair still adds one quantization to
   * the single quantized model, at the boundary.
   */
  static QuantPlan boundaryWithFactors(Calibrator.Result calibrated, VitStructure vit, int split) {
    QuantPlan plan = calibrated.plan();
    if (split < 1 || split >= vit.blocks().size()) {
      return plan; // Split refuses it, in its own words.
    }
    String boundary = vit.blocks().get(split).input();
    return plan.entry(boundary).map(e -> plan.withUpdated(List.of(e.with(Calibrator.streamQuantizer(
        calibrated.stats().get(boundary), e.quantizer().bits()))))).orElse(plan);
  }

  /** The version of the manifest's boundary section: how the device's output is coded. */
  static final String WIRE_FORMAT = "vitq-boundary/1";

  private static Map<String, Object> manifest(ExportRequest r, LoadedModel m, String sha, Preprocessing pre,
      QuantPlan plan, Split.Parts parts, Split.Reduction reductionUsed, BoundaryBudget.Choice choice) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("format", Bundle.FORMAT);
    out.put("vitq_version", version());
    out.put("source", Map.of("model", r.model().toString().replace('\\', '/'), "sha256", sha));
    Map<String, Object> prep = new LinkedHashMap<>();
    prep.put("height", pre.height());
    prep.put("width", pre.width());
    prep.put("scale", pre.scale());
    prep.put("mean", pre.mean());
    prep.put("std", pre.std());
    prep.put("resize", pre.resize());
    prep.put("layout", "NCHW, RGB");
    out.put("preprocessing", prep);
    out.put("labels", m.model().metadata("preprocess").map(Preprocessing::labelsFromMetadata).orElse(List.of()));
    out.put("scheme", plan.scheme().cliName());
    out.put("method", plan.method().cliName());
    out.put("search", plan.search());
    out.put("seed", plan.seed());
    int depth = m.vit().blocks().size();
    out.put("split", Map.of("device_blocks", r.split(), "cloud_blocks", depth - r.split(), "depth", depth));
    String kind = kind(reductionUsed);
    Map<String, Object> reduction = new LinkedHashMap<>();
    reduction.put("kind", kind);
    reduction.put("keep_tokens", reductionUsed instanceof Split.Reduction.Attention a ? a.keep() : null);
    reduction.put("fuse", reductionUsed instanceof Split.Reduction.Attention a && a.fuse());
    reduction.put("pool", reductionUsed instanceof Split.Reduction.Pool p ? p.size() : null);
    reduction.put("merge", reductionUsed instanceof Split.Reduction.Merge g ? g.merged() : null);
    reduction.put("tokens_in", m.vit().tokens());
    reduction.put("tokens_out", parts.tokens());
    reduction.put("rule", switch (reductionUsed) {
      case Split.Reduction.Attention a -> "class token kept; patch tokens ranked by the class token's attention in "
          + "block " + r.split() + " (summed over heads), the top share kept, in rank order"
          + (a.fuse() ? ", then one token: the dropped patch tokens' mean weighted by that attention" : "");
      case Split.Reduction.Pool p -> "class token kept; each " + p.size() + "x" + p.size() + " square of "
          + "neighbouring patch tokens averaged, row-major";
      case Split.Reduction.Merge g -> "class token kept; patch tokens alternate between sets A (even) and B (odd); "
          + "the " + g.merged() + " tokens of A most similar (cosine) to a token of B are averaged into it; out: the "
          + "unmerged A tokens, most similar first, then B";
      case Split.Reduction.None n -> "every token, in model order";
    });
    out.put("token_reduction", reduction);
    out.put("cloud_precision", r.floatCloud() ? "fp32" : "same");
    Map<String, Object> boundary = new LinkedHashMap<>();
    boundary.put("wire_format", WIRE_FORMAT);
    boundary.put("tensor", Map.of("name", Split.TOKENS, "dtype", "uint8", "shape", List.of("batch", parts.tokens(),
        parts.bytesPerToken()), "device_output", true, "cloud_input", true));
    boundary.put("tokens", parts.tokens());
    boundary.put("width", parts.width());
    boundary.put("bytes_per_token", parts.bytesPerToken());
    boundary.put("bytes_per_image", parts.bytesPerImage());
    // What the float model would send at this boundary: every token in float32.
    boundary.put("float32_bytes_per_image", 4L * m.vit().tokens() * parts.width());
    boundary.put("send", "the device output's bytes for one image, row-major (token, then byte): the cloud feeds "
        + "them as " + Split.TOKENS + " [1, " + parts.tokens() + ", " + parts.bytesPerToken() + "] (batch them along "
        + "the first axis); nothing else crosses");
    if (parts.codec() == null) {
      Map<String, Object> levels = new LinkedHashMap<>();
      levels.put("codec", "levels");
      levels.put("components", parts.width());
      levels.put("bits", parts.quantizer().bits());
      levels.put("pack", "one byte per code, per token in channel order");
      levels.put("decode", "x[t, c] = (code[t, c] - zero_point) * scale * channel_factor[c] (cloud.onnx does this)");
      levels.put("scale", QdqLowering.scaleInput(plan.entry(m.vit().blocks().get(r.split()).input()).orElseThrow())[0]);
      levels.put("zero_point", parts.quantizer().zeroPoints()[0]);
      levels.put("channel_factor", parts.channelFactor());
      boundary.put("coding", levels);
    } else {
      boundary.put("coding", parts.codec().describe());
    }
    if (choice != null) {
      Map<String, Object> chosen = new LinkedHashMap<>();
      chosen.put("max_bytes", r.maxBytes());
      chosen.put("fit_images", choice.fitImages());
      chosen.put("score_images", choice.scoreImages());
      chosen.put("agreement", choice.best().agreement());
      chosen.put("tried", choice.tried().stream().map(c -> Map.of("configuration", c.describe(), "bytes_per_image",
          c.bytesPerImage(), "agreement", c.agreement())).toList());
      boundary.put("budget", chosen);
    }
    out.put("boundary", boundary);
    List<String> deviceFiles = switch (r.format()) {
      case ONNX -> List.of(Bundle.DEVICE);
      case ORT -> List.of(Bundle.DEVICE_ORT);
      case BOTH -> List.of(Bundle.DEVICE, Bundle.DEVICE_ORT);
    };
    List<String> cloudFiles = switch (r.format()) {
      case ONNX -> List.of(Bundle.CLOUD);
      case ORT -> List.of(Bundle.CLOUD_ORT);
      case BOTH -> List.of(Bundle.CLOUD, Bundle.CLOUD_ORT);
    };
    out.put("device", Map.of("files", deviceFiles, "input", m.vit().input(), "outputs", List.of(Split.TOKENS)));
    out.put("cloud", Map.of("files", cloudFiles, "inputs", List.of(Split.TOKENS), "output", m.vit().output()));
    return out;
  }

  // ---- evaluate ----------------------------------------------------------------------------------------------

  /**
   * Measures top-1 accuracy over a folder of labelled images (class sub-folders) and, given a reference model, the
   * share of images on which both top-1 classes agree. A bundle runs device then cloud on every batch, and what the
   * device outputs (the 8-bit tokens and their dequantization values) is all the cloud model gets.
   *
   * @throws VitqException if a model, the bundle or the images cannot be used
   */
  public static Reports.Eval evaluate(EvalRequest r, Progress progress) throws VitqException {
    return r.bundle() != null ? evaluateBundle(r, progress) : evaluateAll(List.of(r.model()), r, progress).get(0);
  }

  /**
   * {@link #evaluate(EvalRequest, Progress)}, then {@code report.html} in {@code reportDir} (null: no report).
   *
   * @throws VitqException if a model, the bundle or the images cannot be used
   */
  public static Reports.Eval evaluate(EvalRequest r, Progress progress, Path reportDir) throws VitqException {
    Reports.Eval e = evaluate(r, progress);
    if (reportDir != null) {
      ReportPages.eval(reportDir, r, e);
    }
    return e;
  }

  /** {@link #evaluate} for several models against one reference, which runs once. */
  private static List<Reports.Eval> evaluateAll(List<Path> models, EvalRequest r, Progress progress)
      throws VitqException {
    InferenceSession.Config config = InferenceSession.Config.defaults().withThreads(r.threads());
    Preprocessing pre = r.preprocess().resolve(ModelFiles.read(models.get(0)));
    Evaluation.Predictions refPredictions = null;
    if (r.reference() != null) {
      refPredictions = predict(r.reference(), ImageDataset.open(r.data(), pre), config, r.batchSize(), progress);
    }
    List<Reports.Eval> out = new java.util.ArrayList<>();
    for (Path model : models) {
      ImageDataset images = ImageDataset.open(r.data(), pre);
      Evaluation.Predictions p = predict(model, images, config, r.batchSize(), progress);
      boolean labelled = !images.classes().isEmpty();
      out.add(new Reports.Eval(model.toString(), p.predicted().length, images.skipped(), labelled ? p.top1() : null,
          r.reference() == null ? null : r.reference().toString(), refPredictions == null ? null
          : p.agreement(refPredictions)));
    }
    return out;
  }

  /** Top-1 predictions of an ONNX or ORT file. */
  private static Evaluation.Predictions predict(Path file, ImageDataset images, InferenceSession.Config config,
      int batchSize, Progress progress) throws VitqException {
    Model m = ModelFiles.read(file);
    PreprocessFlags.imageInput(m);
    try (InferenceSession s = ModelFiles.open(file, m, config)) {
      return Evaluation.predict(s, images, runBatch(m, batchSize), progress);
    }
  }

  /** The batch a model's image input is fixed to, or 0 when it is dynamic. */
  static long fixedBatch(Model m) {
    var shape = m.graph().inputs().get(0).type() == null ? null : m.graph().inputs().get(0).type().shape();
    return shape != null && !shape.isEmpty() && shape.get(0).isFixed() ? shape.get(0).size() : 0;
  }

  /**
   * Images per run for a model: {@code requested} when its batch is dynamic, one at a time when it is fixed at 1 (as
   * an export without dynamic axes is).
   *
   * @throws VitqException when the batch is fixed at more than one image
   */
  static int runBatch(Model m, int requested) throws VitqException {
    long fixed = fixedBatch(m);
    if (fixed > 1) {
      throw new VitqException("The model's input has a fixed batch of " + fixed + "; vitq runs models whose batch is "
          + "dynamic or 1, so export it with a dynamic batch.");
    }
    return fixed == 1 ? 1 : requested;
  }

  private static String name(Path p) {
    return p == null ? DemoModel.NAME : fileName(p);
  }

  /**
   * Measures the reference and each model on the same images and machine, in one run: top-1, agreement with the
   * reference, file size, batch-1 latency and batch-32 time (the table of BENCHMARKS.md).
   *
   * @throws VitqException if a model or the images cannot be used
   */
  public static Reports.Compare compare(CompareRequest r, Progress progress) throws VitqException {
    if (r.runs() < 5) {
      throw new VitqException("--runs must be at least 5, got " + r.runs() + ".");
    }
    List<Path> all = new java.util.ArrayList<>();
    all.add(r.reference());
    all.addAll(r.models());
    List<Reports.Eval> evals = evaluateAll(all, EvalRequest.of(r.reference(), r.data()).withReference(r.reference())
        .withThreads(r.threads()), progress);
    List<Reports.Compare.Row> rows = new java.util.ArrayList<>();
    for (int i = 0; i < all.size(); i++) {
      Path m = all.get(i);
      BenchRequest bench = BenchRequest.of(m).withThreads(r.threads());
      Reports.Bench b1 = bench(bench.withRuns(r.runs()));
      Reports.Bench b32 = bench(bench.withBatch(32).withRuns(Math.max(5, r.runs() / 5)));
      rows.add(new Reports.Compare.Row(fileName(m), evals.get(i).top1(), evals.get(i).agreement(), sizeOf(m),
          b1.medianMillis(), b32.medianMillis()));
    }
    return new Reports.Compare(rows);
  }

  private static Reports.Eval evaluateBundle(EvalRequest r, Progress progress) throws VitqException {
    Path bundle = r.bundle();
    Path reference = r.reference();
    int batchSize = r.batchSize();
    Bundle.Loaded b = Bundle.read(bundle);
    InferenceSession.Config config = InferenceSession.Config.defaults().withThreads(r.threads());
    Preprocessing pre = r.preprocess().resolve(b.device());
    Evaluation.Predictions refPredictions = reference == null ? null
        : predict(reference, ImageDataset.open(r.data(), pre), config, batchSize, progress);
    ImageDataset images = ImageDataset.open(r.data(), pre);
    int[] predicted = new int[images.size()];
    int[] labels = new int[images.size()];
    int[] n = {0};
    try (Bundle.Pair pair = Bundle.Pair.open(b, config)) {
      images.forEachBatch(runBatch(b.device(), batchSize), progress, batch -> {
        float[] logits = pair.decode(pair.encode(HostTensor.ofFloats(batch.shape(), batch.pixels()))).floats();
        int classes = logits.length / batch.count();
        for (int i = 0; i < batch.count(); i++) {
          predicted[n[0]] = Evaluation.argmax(logits, i * classes, classes);
          labels[n[0]] = batch.labels()[i];
          n[0]++;
        }
      });
    }
    Evaluation.Predictions p = new Evaluation.Predictions(Arrays.copyOf(predicted, n[0]), Arrays.copyOf(labels, n[0]));
    return new Reports.Eval(bundle.toString(), n[0], images.skipped(), images.classes().isEmpty() ? null : p.top1(),
        reference == null ? null : reference.toString(), refPredictions == null ? null : p.agreement(refPredictions));
  }

  // ---- bench -------------------------------------------------------------------------------------------------

  /** Untimed runs before measuring: ONNX Runtime allocates and tunes on the first ones. */
  static final int WARMUP_RUNS = 5;

  /**
   * Times a model in ONNX Runtime on a fixed random batch: the median and 90th percentile of {@code runs} timed runs
   * after {@value #WARMUP_RUNS} warm-up runs.
   *
   * @throws VitqException if the model cannot be loaded or run
   */
  public static Reports.Bench bench(BenchRequest r) throws VitqException {
    Path model = r.target();
    int batch = r.batch();
    int runs = r.runs();
    checkBench(batch, runs);
    Model m = ModelFiles.read(model);
    if (fixedBatch(m) > 0 && fixedBatch(m) != batch) {
      throw new VitqException(fileName(model) + "'s input has a fixed batch of " + fixedBatch(m) + "; bench it with "
          + "--batch " + fixedBatch(m) + ".");
    }
    HostTensor x = randomImages(m, batch);
    double[] times;
    try (InferenceSession s = ModelFiles.open(model, m, InferenceSession.Config.defaults()
        .withThreads(r.threads()))) {
      Map<String, HostTensor> feed = Map.of(s.inputNames().get(0), x);
      times = time(() -> s.run(feed, List.of(s.outputNames().get(0))), runs);
    }
    double median = median(times);
    double p90 = times[Math.min(runs - 1, (int) Math.ceil(0.9 * runs) - 1)];
    return new Reports.Bench(model.toString(), batch, r.threads(), runs, median, p90, batch * 1000.0 / median);
  }

  /**
   * Times a bundle's two halves on a fixed random batch: the device model from the image, the cloud model from what
   * the device output; medians of {@code runs} timed runs after {@value #WARMUP_RUNS} warm-up runs each.
   *
   * @throws VitqException if the bundle cannot be loaded or run
   */
  public static Reports.BundleBench benchBundle(BenchRequest r) throws VitqException {
    Path bundle = r.target();
    int batch = r.batch();
    int threads = r.threads();
    int runs = r.runs();
    checkBench(batch, runs);
    Bundle.Loaded b = Bundle.read(bundle);
    HostTensor x = randomImages(b.device(), batch);
    try (Bundle.Pair pair = Bundle.Pair.open(b, InferenceSession.Config.defaults().withThreads(threads))) {
      Map<String, HostTensor> wire = pair.encode(x);
      double device = median(time(() -> pair.encode(x), runs));
      double cloud = median(time(() -> pair.decode(wire), runs));
      long bytes = wire.get(Split.TOKENS).data().capacity() / batch;
      return new Reports.BundleBench(bundle.toString(), batch, threads, runs, device, cloud, bytes);
    }
  }

  private static void checkBench(int batch, int runs) throws VitqException {
    if (batch <= 0 || runs <= 0) {
      throw new VitqException("Batch and runs must be positive, got batch " + batch + " and runs " + runs + ".");
    }
  }

  /** A fixed pseudo-random batch shaped for the model's image input. */
  private static HostTensor randomImages(Model m, int batch) throws VitqException {
    Value input = PreprocessFlags.imageInput(m);
    var shape = input.type().shape();
    long h = shape.get(2).isFixed() ? shape.get(2).size() : -1;
    long w = shape.get(3).isFixed() ? shape.get(3).size() : -1;
    if (h <= 0 || w <= 0) {
      Preprocessing pre = PreprocessFlags.NONE.resolve(m);
      h = pre.height();
      w = pre.width();
    }
    float[] pixels = new float[Math.toIntExact(batch * 3 * h * w)];
    Random rng = new Random(0);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    return HostTensor.ofFloats(new long[] {batch, 3, h, w}, pixels);
  }

  /** One ONNX Runtime run. */
  private interface Run {
    void run() throws VitqException;
  }

  /** Sorted times in milliseconds of {@code runs} runs after the warm-up runs. */
  private static double[] time(Run run, int runs) throws VitqException {
    for (int i = 0; i < WARMUP_RUNS; i++) {
      run.run();
    }
    double[] times = new double[runs];
    for (int i = 0; i < runs; i++) {
      long t = System.nanoTime();
      run.run();
      times[i] = (System.nanoTime() - t) / 1e6;
    }
    Arrays.sort(times);
    return times;
  }

  private static double median(double[] sorted) {
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  // ---- serve -------------------------------------------------------------------------------------------------

  /**
   * Starts a bundle's cloud decoder as an HTTP server ({@link DecoderServer}); close it to stop, after answering
   * the requests in flight.
   *
   * @throws VitqException if the bundle or the settings cannot be used, or the port is taken
   */
  public static DecoderServer serve(ServeRequest r) throws VitqException {
    return DecoderServer.start(r);
  }

  // ---- helpers -----------------------------------------------------------------------------------------------

  /** vitq's version, as Maven stamped it. */
  public static String version() {
    try (InputStream in = Vitq.class.getResourceAsStream("version.properties")) {
      Properties p = new Properties();
      if (in != null) {
        p.load(in);
      }
      return p.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }

  static String sha256(Path file) throws VitqException {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest d = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        d.update(buf, 0, n);
      }
      return HexFormat.of().formatHex(d.digest());
    } catch (IOException e) {
      throw new VitqException("Cannot read " + file + ": " + e.getMessage() + ".", e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("Every JDK has SHA-256", e);
    }
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("Every JDK has SHA-256", e);
    }
  }

  static long sizeOf(Path p) {
    try {
      return Files.size(p);
    } catch (IOException e) {
      return -1;
    }
  }

  private static long millis(long from, long to) {
    return (to - from) / 1_000_000;
  }
}
