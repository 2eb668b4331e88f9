package dev.vitq.api;

import dev.vitq.api.report.Reports;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What {@link Vitq#evaluate} is asked to measure: a model's (or a device/cloud bundle's) top-1 accuracy over labelled
 * images and its agreement with a reference. Start from {@link #of} or {@link #ofBundle}.
 *
 * {@snippet lang="java" :
 * Reports.Eval e = Vitq.evaluate(EvalRequest.of(Path.of("vit-w8a8.onnx"), Path.of("val/"))
 *     .withReference(Path.of("vit.onnx")), Progress.NONE);
 * }
 *
 * @param model the ONNX model, or null for a bundle
 * @param bundle the bundle folder written by {@link Vitq#export}, or null for a model
 * @param data the images: class sub-folders (sorted names give the labels) or a flat folder
 * @param reference the model agreement is measured against (usually the float original), or null
 * @param preprocess preprocessing overrides
 * @param threads ONNX Runtime intra-op threads (0: ONNX Runtime's choice)
 * @param batchSize images per run
 */
public record EvalRequest(Path model, Path bundle, Path data, Path reference, PreprocessFlags preprocess,
    int threads, int batchSize) {
  public EvalRequest {
    if ((model == null) == (bundle == null)) {
      throw new IllegalArgumentException("An evaluation has a model or a bundle, one of them");
    }
    Objects.requireNonNull(data, "data");
    Objects.requireNonNull(preprocess, "preprocess");
  }

  /** A model on {@code data}: no reference, preprocessing from the model, default threads and batch. */
  public static EvalRequest of(Path model, Path data) {
    return new EvalRequest(model, null, data, null, PreprocessFlags.NONE, 0, QuantizeRequest.DEFAULT_BATCH);
  }

  /** A bundle on {@code data}: every batch runs through the device model, and only its outputs reach the cloud's. */
  public static EvalRequest ofBundle(Path bundle, Path data) {
    return new EvalRequest(null, bundle, data, null, PreprocessFlags.NONE, 0, QuantizeRequest.DEFAULT_BATCH);
  }

  public EvalRequest withReference(Path r) {
    return new EvalRequest(model, bundle, data, r, preprocess, threads, batchSize);
  }

  public EvalRequest withPreprocess(PreprocessFlags p) {
    return new EvalRequest(model, bundle, data, reference, p, threads, batchSize);
  }

  public EvalRequest withThreads(int n) {
    return new EvalRequest(model, bundle, data, reference, preprocess, n, batchSize);
  }

  public EvalRequest withBatchSize(int n) {
    return new EvalRequest(model, bundle, data, reference, preprocess, threads, n);
  }

  /** The settings table of the eval report. */
  Map<String, Object> reportSettings(Reports.Eval e) {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put(bundle != null ? "bundle" : "model", e.model());
    settings.put("images", data.toString());
    settings.put("reference", e.reference() == null ? "none" : e.reference());
    settings.put("batch", batchSize);
    return settings;
  }
}
