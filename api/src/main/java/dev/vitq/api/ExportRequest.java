package dev.vitq.api;

import dev.vitq.api.report.Reports;
import dev.vitq.converter.Format;
import dev.vitq.converter.Target;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.Scheme;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What {@link Vitq#export} is asked to do: split a quantized ViT into a device encoder and a cloud decoder. Start
 * from {@link #of} and change what differs from the defaults.
 *
 * @param model the float ONNX model
 * @param calibration folder of calibration images (unused when {@code plan} is given)
 * @param bundle the folder the bundle is written to
 * @param split blocks on the device (K)
 * @param scheme bit widths
 * @param method scale initialisation
 * @param keepTokens share of patch tokens kept by the class token's attention, or 0 for all
 * @param fuse with {@code keepTokens}: also send the attention-weighted mean of the dropped patch tokens
 * @param pool side of the squares of neighbouring patch tokens averaged into one, or 0 for none
 * @param floatCloud whether the cloud runs its blocks in float ({@code --cloud-precision fp32})
 * @param seed seed of every random choice
 * @param plan a plan from {@code vitq quantize --plan-out} to use instead of calibrating, or null
 * @param preprocess preprocessing overrides
 * @param threads ONNX Runtime intra-op threads (0: ONNX Runtime's choice)
 * @param batchSize images per ONNX Runtime run during calibration
 * @param merge patch tokens merged away by ToMe's bipartite matching, or 0 for none
 * @param maxBytes boundary bytes per image to fit: the reduction and coding are then chosen (0: as given)
 * @param format ONNX, ORT or both for the two halves
 * @param target the runtime both halves are written for
 */
public record ExportRequest(Path model, Path calibration, Path bundle, int split, Scheme scheme, Method method,
    double keepTokens, boolean fuse, int pool, boolean floatCloud, long seed, Path plan, PreprocessFlags preprocess,
    int threads, int batchSize, int merge, long maxBytes, Format format, Target target) {
  public ExportRequest {
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(target, "target");
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(bundle, "bundle");
    Objects.requireNonNull(scheme, "scheme");
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(preprocess, "preprocess");
  }

  /** W8A8, MSE, every token, quantized cloud, seed 0, preprocessing from the model. */
  public static ExportRequest of(Path model, Path calibration, Path bundle, int split) {
    return new ExportRequest(model, calibration, bundle, split, Scheme.W8A8, Method.MSE, 0, false, 0,
        false, 0, null, PreprocessFlags.NONE, 0, QuantizeRequest.DEFAULT_BATCH, 0, 0, Format.ONNX, Target.CPU);
  }

  public ExportRequest withScheme(Scheme s) {
    return new ExportRequest(model, calibration, bundle, split, s, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withMethod(Method m) {
    return new ExportRequest(model, calibration, bundle, split, scheme, m, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  /** Keep the class token and this share of patch tokens, ranked by the class token's attention in block K. */
  public ExportRequest withKeepTokens(double share) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, share, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  /** With {@link #withKeepTokens}, also send the attention-weighted mean of the dropped patch tokens. */
  public ExportRequest withFuse(boolean f) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, f, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  /** Average every {@code side} x {@code side} square of neighbouring patch tokens into one. */
  public ExportRequest withPool(int side) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, side,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withFloatCloud(boolean f) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        f, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withSeed(long s) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, s, plan, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withPlan(Path p) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, p, preprocess, threads, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withPreprocess(PreprocessFlags p) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, p, threads, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withThreads(int n) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, n, batchSize, merge, maxBytes, format, target);
  }

  public ExportRequest withBatchSize(int n) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, n, merge, maxBytes, format, target);
  }

  /** Merge this many patch tokens away with ToMe's bipartite soft matching. */
  public ExportRequest withMerge(int n) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, n, maxBytes, format, target);
  }

  /** Fit the boundary into this many bytes per image, choosing the reduction and the coding (0: as given). */
  public ExportRequest withMaxBytes(long n) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, n, format, target);
  }

  /** Write the halves as ONNX, ORT (ONNX Runtime Mobile) or both. */
  public ExportRequest withFormat(Format f) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, f, target);
  }

  /** Writes both halves for another runtime ({@code --target}). */
  public ExportRequest withTarget(Target t) {
    return new ExportRequest(model, calibration, bundle, split, scheme, method, keepTokens, fuse, pool,
        floatCloud, seed, plan, preprocess, threads, batchSize, merge, maxBytes, format, t);
  }

  /** The settings table of the export report. */
  Map<String, Object> reportSettings(Reports.Export x) {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("model", x.source());
    settings.put("plan", plan == null ? "calibrated on " + calibration : plan.toString());
    settings.put("scheme", x.scheme());
    settings.put("split", "after block " + x.split() + " of " + x.depth());
    settings.put("token reduction", x.reduction() + (keepTokens != 0 ? ", keep " + keepTokens : "")
        + (fuse ? ", fused" : "") + (pool != 0 ? ", pool " + pool : ""));
    settings.put("cloud precision", floatCloud ? "fp32" : "same");
    settings.put("seed", seed);
    return settings;
  }
}
