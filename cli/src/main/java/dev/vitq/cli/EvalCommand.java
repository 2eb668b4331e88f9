package dev.vitq.cli;

import dev.vitq.api.EvalRequest;
import dev.vitq.api.QuantizeRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq eval MODEL --data DIR [--ref FP32.onnx]}. */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description = "Measure a classifier's top-1 accuracy on labelled images (class sub-folders in sorted order give "
        + "the labels) and its agreement with a reference model.")
final class EvalCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "The ONNX model to evaluate.")
  Path model;

  @Option(names = "--bundle", paramLabel = "DIR",
      description = "A bundle written by vitq export, instead of MODEL: each batch runs through device.onnx, and "
          + "only what it outputs reaches cloud.onnx.")
  Path bundle;

  @Option(names = "--data", required = true, paramLabel = "DIR", description = "The images.")
  Path data;

  @Option(names = "--ref", paramLabel = "FP32.onnx",
      description = "Reference model: report the share of images whose top-1 class equals its top-1 class; for an "
          + "embedding model, each image's output cosine with the reference's (mean, 1st percentile) and retrieval "
          + "agreement (each image's nearest other image is the reference's).")
  Path ref;

  @Option(names = "--report", paramLabel = "DIR",
      description = "Write report.html (settings, top-1 and agreement with a chart) into DIR.")
  Path report;

  @Mixin ThreadsOption threads;

  @Option(names = "--batch", defaultValue = "" + QuantizeRequest.DEFAULT_BATCH, paramLabel = "N",
      description = "Images per run (default: ${DEFAULT-VALUE}).")
  int batch;

  @Mixin PreprocessOptions preprocess;

  @Mixin OutputOptions output;

  @Override
  public Integer call() throws VitqException {
    if (batch <= 0) {
      throw new VitqException("--batch must be positive, got " + batch + ".");
    }
    if ((model == null) == (bundle == null)) {
      throw new VitqException("Pass a MODEL or --bundle DIR, one of them.");
    }
    EvalRequest request = (bundle != null ? EvalRequest.ofBundle(bundle, data) : EvalRequest.of(model, data))
        .withReference(ref).withPreprocess(preprocess.flags()).withThreads(threads.get()).withBatchSize(batch);
    Reports.Eval r = Vitq.evaluate(request, output.progress(), report);
    PrintWriter pw = spec.commandLine().getOut();
    if (output.json) {
      pw.println(Json.write(r));
    } else {
      String skipped = r.skippedImages() > 0 ? " (" + r.skippedImages() + " skipped)" : "";
      Reports.EmbeddingMeasures e = r.embedding();
      if (e != null) {
        pw.printf("%s on %d images%s (an embedding):%s%s%n", r.model(), r.images(), skipped,
            e.nearestNeighbourAccuracy() == null ? " (unlabelled)"
                : String.format(" 1-NN accuracy %.4f", e.nearestNeighbourAccuracy()),
            e.cosineMean() == null ? "" : String.format(", cosine with %s mean %.5f, 1st percentile %.5f, retrieval "
                + "agreement %.4f", r.reference(), e.cosineMean(), e.cosineP1(), e.retrievalAgreement()));
      } else {
        pw.printf("%s on %d images%s:%s%s%n", r.model(), r.images(), skipped,
            r.top1() == null ? " (unlabelled)" : String.format(" top-1 %.4f", r.top1()),
            r.agreement() == null ? "" : String.format(", agreement with %s %.4f", r.reference(), r.agreement()));
      }
    }
    pw.flush();
    return 0;
  }
}
