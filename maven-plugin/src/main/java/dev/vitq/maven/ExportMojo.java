package dev.vitq.maven;

import dev.vitq.api.ExportRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.Target;
import dev.vitq.models.VitqException;
import java.io.File;
import org.apache.maven.plugins.annotations.LifecyclePhase;
import org.apache.maven.plugins.annotations.Mojo;
import org.apache.maven.plugins.annotations.Parameter;

/** {@code vitq export}: quantizes a float ViT and splits it into a device/cloud bundle. */
@Mojo(name = "export", defaultPhase = LifecyclePhase.PACKAGE, threadSafe = true)
public class ExportMojo extends VitqMojo {
  /** The float ONNX model. */
  @Parameter(property = "vitq.model", required = true)
  File model;

  /** Calibration images (not needed with a plan). */
  @Parameter(property = "vitq.calib")
  File calib;

  /** A plan written by the quantize goal's planOut, instead of calibrating. */
  @Parameter
  File plan;

  /** Blocks on the device. */
  @Parameter(property = "vitq.split", required = true)
  int split;

  /** w8a8, w6a6, w4a8, w4a4, w8a16 or w4a16. */
  @Parameter(property = "vitq.scheme", defaultValue = "w8a8")
  String scheme;

  /** The runtime the artifact is for: cpu, qdq, qnn, nnapi, coreml or xnnpack. */
  @Parameter(property = "vitq.target", defaultValue = "cpu")
  String target = "cpu";

  /** minmax, percentile or mse. */
  @Parameter(property = "vitq.method", defaultValue = "mse")
  String method;

  /** Send the class token and this share of patch tokens (0 or 1: every token). */
  @Parameter(defaultValue = "0")
  double keepTokens;

  /** With keepTokens: also send the attention-weighted mean of the dropped tokens. */
  @Parameter(defaultValue = "false")
  boolean fuse;

  /** Send the class token and the mean of every pool x pool square of patch tokens (0: off). */
  @Parameter(defaultValue = "0")
  int pool;

  /** same (the cloud runs quantized blocks) or fp32. */
  @Parameter(defaultValue = "same")
  String cloudPrecision;

  /** Seed. */
  @Parameter(property = "vitq.seed", defaultValue = "0")
  long seed;

  /** The bundle folder. */
  @Parameter(property = "vitq.bundle", defaultValue = "${project.build.directory}/vitq/bundle")
  File output;

  @Override
  void run() throws VitqException {
    if (!cloudPrecision.equals("same") && !cloudPrecision.equals("fp32")) {
      throw new VitqException("<cloudPrecision> must be same or fp32, got '" + cloudPrecision + "'.");
    }
    ExportRequest r = ExportRequest.of(model.toPath(), path(calib), output.toPath(), split)
        .withScheme(scheme(scheme)).withMethod(method(method)).withKeepTokens(keepTokens == 1.0 ? 0 : keepTokens)
        .withFuse(fuse).withPool(pool).withFloatCloud(cloudPrecision.equals("fp32")).withSeed(seed)
        .withPlan(path(plan)).withPreprocess(preprocess()).withThreads(threads).withBatchSize(batch)
        .withTarget(Target.parse(target));
    Reports.Export e = Vitq.export(r, Progress.NONE, path(report));
    getLog().info(String.format("vitq: exported %s (%s) split after block %d of %d -> %s: %d of %d tokens, %,d bytes "
            + "per image", e.source(), e.scheme(), e.split(), e.depth(), e.bundle(), e.tokensOut(), e.tokensIn(),
        e.bytesPerImage()));
  }
}
