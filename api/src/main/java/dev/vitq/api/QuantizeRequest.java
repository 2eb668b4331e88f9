package dev.vitq.api;

import dev.vitq.api.report.Reports;
import dev.vitq.converter.Format;
import dev.vitq.converter.Target;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.Technique;
import dev.vitq.quantizer.search.AutoSearch;
import dev.vitq.quantizer.search.SearchSettings;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What {@link Vitq#quantize} is asked to do. Start from {@link #of} and change what differs from the defaults.
 *
 * @param model the float ONNX model, or null for the embedded demo model
 * @param calibration folder of calibration images (flat or class sub-folders); null with the demo model, and with
 *     the schemes written without calibration ({@link Scheme#dataFree}), which do not read it
 * @param output where the quantized ONNX model goes
 * @param scheme bit widths
 * @param method scale initialisation
 * @param search "none", or "evolq" for the evolutionary scale search
 * @param seed seed of every random choice
 * @param planOut where to write the plan as JSON, or null
 * @param preprocess preprocessing overrides
 * @param threads ONNX Runtime intra-op threads (0: ONNX Runtime's choice)
 * @param batchSize images per ONNX Runtime run during calibration
 * @param searchSettings how the evolq search runs (its seed is {@code seed})
 * @param resume continue an interrupted search from its saved state, {@link Vitq#stateFile}
 * @param reportDir where the search writes report.json and report.png, or null
 * @param format ONNX, ORT (beside {@code output}, extension .ort) or both
 * @param techniques the quantizers beyond per-tensor uniform ones, or null for the scheme's defaults
 *     ({@link Technique#defaults})
 * @param maxBytes with {@link Scheme#AUTO}: the largest model to ship, in bytes (0: not set)
 * @param maxLatencyMillis with {@link Scheme#AUTO}: the largest median batch-1 latency to ship, measured on this
 *     machine (0: no limit)
 * @param autoSettings how the mixed-precision search runs (its seed is {@code seed})
 * @param maxDrop the accuracy budget: the largest drop from the float model allowed on {@code validation}, parts
 *     raised until it holds (null: no budget)
 * @param validation with {@code maxDrop}: held-out images, not calibration's, the drop is measured on
 * @param validationLimit with {@code maxDrop}: measure on a seeded sample of this many of them (0: all)
 * @param target the runtime the model is written for ({@link Target#CPU}: ONNX Runtime's CPU provider)
 */
public record QuantizeRequest(Path model, Path calibration, Path output, Scheme scheme, Method method, String search,
    long seed, Path planOut, PreprocessFlags preprocess, int threads, int batchSize,
    SearchSettings searchSettings, boolean resume, Path reportDir, Format format, Set<Technique> techniques,
    long maxBytes, double maxLatencyMillis, AutoSearch.Settings autoSettings, Double maxDrop, Path validation,
    int validationLimit, Target target) {
  /** The default images per calibration run. */
  public static final int DEFAULT_BATCH = 50;

  public QuantizeRequest {
    Objects.requireNonNull(output, "output");
    Objects.requireNonNull(scheme, "scheme");
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(search, "search");
    Objects.requireNonNull(preprocess, "preprocess");
    Objects.requireNonNull(searchSettings, "searchSettings");
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(autoSettings, "autoSettings");
    Objects.requireNonNull(target, "target");
    if (batchSize <= 0) {
      throw new IllegalArgumentException("Batch size must be positive, got " + batchSize);
    }
  }

  /**
   * Quantizes under an accuracy budget: measured on {@code images} (held out from calibration), the parts that lose
   * most are raised (activations to 8 bits, weights to 8 bits, float) until the drop from the float model is at most
   * {@code drop}; with {@link Scheme#AUTO} the raising stays within {@link #maxBytes}.
   */
  public QuantizeRequest withMaxDrop(Double drop, Path images) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        drop, images, validationLimit, target);
  }

  /** With {@link #maxDrop}: measures on a seeded sample of {@code n} of the held-out images (0: all of them). */
  public QuantizeRequest withValidationLimit(int n) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, n, target);
  }

  /** The default search. */
  public static final String DEFAULT_SEARCH = "none";

  /** W8A8, MSE initialisation, the default search with its default settings, seed 0, preprocessing from the model. */
  public static QuantizeRequest of(Path model, Path calibration, Path output) {
    return new QuantizeRequest(model, calibration, output, Scheme.W8A8, Method.MSE, DEFAULT_SEARCH, 0, null,
        PreprocessFlags.NONE, 0, DEFAULT_BATCH, SearchSettings.defaults(), false, null, Format.ONNX, null, 0, 0,
        AutoSearch.Settings.defaults(), null, null, 0, Target.CPU);
  }

  public QuantizeRequest withScheme(Scheme s) {
    return new QuantizeRequest(model, calibration, output, s, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withMethod(Method m) {
    return new QuantizeRequest(model, calibration, output, scheme, m, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withSearch(String s) {
    return new QuantizeRequest(model, calibration, output, scheme, method, s, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withSeed(long s) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, s, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withPlanOut(Path p) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, p, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withPreprocess(PreprocessFlags p) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, p, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withThreads(int n) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, n,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withBatchSize(int n) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        n, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withSearchSettings(SearchSettings s) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, s, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withResume(boolean r) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, r, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withTechniques(Set<Technique> t) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, t == null ? null : Set.copyOf(t), maxBytes,
        maxLatencyMillis, autoSettings, maxDrop, validation, validationLimit, target);
  }

  /** With {@link Scheme#AUTO}: ships the best front point of at most this many bytes. */
  public QuantizeRequest withMaxBytes(long n) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, n, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  /** With {@link Scheme#AUTO}: ships only a front point at most this slow at batch 1 on this machine (0: any). */
  public QuantizeRequest withMaxLatencyMillis(double ms) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, ms, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  public QuantizeRequest withAutoSettings(AutoSearch.Settings s) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, s,
        maxDrop, validation, validationLimit, target);
  }

  /** The techniques calibration uses: those asked for, or the scheme's defaults. */
  public Set<Technique> techniquesOrDefaults() {
    return techniques == null ? Technique.defaults(scheme) : techniques;
  }

  public QuantizeRequest withReportDir(Path dir) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, dir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  /** Writes ONNX, the ORT format ONNX Runtime Mobile loads, or both. */
  public QuantizeRequest withFormat(Format f) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, f, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, target);
  }

  /** Writes the model for another runtime ({@code --target}). */
  public QuantizeRequest withTarget(Target t) {
    return new QuantizeRequest(model, calibration, output, scheme, method, search, seed, planOut, preprocess, threads,
        batchSize, searchSettings, resume, reportDir, format, techniques, maxBytes, maxLatencyMillis, autoSettings,
        maxDrop, validation, validationLimit, t);
  }

  /** The settings table of the quantize report. */
  Map<String, Object> reportSettings(Reports.Quantize q) {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("model", q.source());
    settings.put("model SHA-256", q.sourceSha256());
    settings.put("calibration images", calibration == null ? "synthetic (demo)" : calibration.toString());
    settings.put("scheme", q.scheme());
    settings.put("method", q.method());
    settings.put("search", q.search());
    settings.put("seed", q.seed());
    settings.put("batch", batchSize);
    if (maxDrop != null) {
      settings.put("max drop", maxDrop);
      settings.put("held-out images", validation + (validationLimit > 0 ? " (" + validationLimit + " of them)" : ""));
    }
    settings.put("recognised as a ViT", q.recognised() ? "yes" : "no: " + q.notRecognisedReason());
    return settings;
  }
}
