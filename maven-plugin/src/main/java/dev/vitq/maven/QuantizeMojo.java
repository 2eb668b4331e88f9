package dev.vitq.maven;

import dev.vitq.api.QuantizeRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.Target;
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

  /** w8a8, w6a6, w4a8, w4a4, w8a16 or w4a16; or, without calibration, w8-dynamic or fp16. */
  @Parameter(property = "vitq.scheme", defaultValue = "w8a8")
  String scheme;

  /** The runtime the artifact is for: cpu, qdq, qnn, nnapi, coreml or xnnpack. */
  @Parameter(property = "vitq.target", defaultValue = "cpu")
  String target = "cpu";

  /** minmax, percentile or mse. */
  @Parameter(property = "vitq.method", defaultValue = "mse")
  String method;

  /** none or evolq. */
  @Parameter(property = "vitq.search", defaultValue = "none")
  String search;

  /** Seed. */
  @Parameter(property = "vitq.seed", defaultValue = "0")
  long seed;

  /**
   * An accuracy budget: the largest drop from the float model on {@link #val} (top-1, agreement or mean cosine, as
   * {@code vitq quantize --max-drop} measures it); parts are raised until it holds, and the build fails when none can.
   */
  @Parameter(property = "vitq.maxDrop")
  Double maxDrop;

  /** With {@link #maxDrop}: held-out images, none of them calibration images. */
  @Parameter(property = "vitq.val")
  File val;

  /** With {@link #maxDrop}: measure on a seeded sample of this many {@link #val} images (0: all). */
  @Parameter(property = "vitq.valLimit", defaultValue = "0")
  int valLimit;

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
        .withReportDir(path(report)).withMaxDrop(maxDrop, path(val)).withValidationLimit(valLimit)
        .withTarget(Target.parse(target));
    Reports.Quantize q = Vitq.quantize(r, Progress.NONE);
    getLog().info(String.format("vitq: quantized %s (%s, %s, search %s) -> %s, %,d bytes, in %.1f s", q.source(),
        q.scheme(), q.method(), q.search(), q.output(), q.bytes(), q.totalMillis() / 1000.0));
    if (q.budget() != null) {
      getLog().info(String.format("vitq: accuracy budget %s met: drop in %s %.4f on %d held-out images after %d "
          + "raises (%s)", q.budget().maxDrop(), q.budget().measure(), q.budget().drop(), q.budget().images(),
          q.budget().raised().size(), String.join(", ", q.budget().raised().stream()
              .map(x -> x.part() + " " + x.to()).toList())));
    }
  }
}
