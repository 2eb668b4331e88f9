package dev.vitq.maven;

import dev.vitq.api.QuantizeRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import java.io.File;
import org.apache.maven.plugins.annotations.LifecyclePhase;
import org.apache.maven.plugins.annotations.Mojo;
import org.apache.maven.plugins.annotations.Parameter;

/**
 * {@code vitq quantize}: calibrates a float ViT on images and writes the quantized ONNX model; with the schemes
 * written without calibration ({@code w8-dynamic}, {@code fp16}), converts it without images.
 */
@Mojo(name = "quantize", defaultPhase = LifecyclePhase.PACKAGE, threadSafe = true)
public class QuantizeMojo extends VitqMojo {
  /** The float ONNX model. */
  @Parameter(property = "vitq.model", required = true)
  File model;

  /** Calibration images (a folder, class sub-folders allowed); not read by w8-dynamic and fp16, required otherwise. */
  @Parameter(property = "vitq.calib")
  File calib;

  /** w8a8, w6a6, w4a8 or w4a4; or, without calibration, w8-dynamic or fp16. */
  @Parameter(property = "vitq.scheme", defaultValue = "w8a8")
  String scheme;

  /** minmax, percentile or mse. */
  @Parameter(property = "vitq.method", defaultValue = "mse")
  String method;

  /** none or evolq. */
  @Parameter(property = "vitq.search", defaultValue = "none")
  String search;

  /** Seed. */
  @Parameter(property = "vitq.seed", defaultValue = "0")
  long seed;

  /** Where the plan goes as JSON; none by default. */
  @Parameter
  File planOut;

  /** The quantized model. */
  @Parameter(property = "vitq.output", defaultValue = "${project.build.directory}/vitq/model.onnx")
  File output;

  @Override
  void run() throws VitqException {
    QuantizeRequest r = QuantizeRequest.of(model.toPath(), path(calib), output.toPath())
        .withScheme(scheme(scheme)).withMethod(method(method)).withSearch(search).withSeed(seed)
        .withPlanOut(path(planOut)).withPreprocess(preprocess()).withThreads(threads).withBatchSize(batch)
        .withReportDir(path(report));
    Reports.Quantize q = Vitq.quantize(r, Progress.NONE);
    getLog().info(String.format("vitq: quantized %s (%s, %s, search %s) -> %s, %,d bytes, in %.1f s", q.source(),
        q.scheme(), q.method(), q.search(), q.output(), q.bytes(), q.totalMillis() / 1000.0));
  }
}
