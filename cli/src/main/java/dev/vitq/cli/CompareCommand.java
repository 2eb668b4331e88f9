package dev.vitq.cli;

import dev.vitq.api.CompareRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq compare --ref FP32 --data DIR MODEL...}: one table of accuracy, size and speed, in one run. */
@Command(
    name = "compare",
    mixinStandardHelpOptions = true,
    description = "Measure the reference and each model on the same images and machine, in one run: top-1, "
        + "agreement with the reference, file size, batch-1 latency and batch-32 time.")
final class CompareCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(paramLabel = "MODEL", arity = "1..*", description = "The models to compare with the reference.")
  List<Path> models;

  @Option(names = "--ref", required = true, paramLabel = "FP32.onnx", description = "The reference model.")
  Path ref;

  @Option(names = "--data", required = true, paramLabel = "DIR", description = "Labelled images.")
  Path data;

  @Mixin ThreadsOption threads;

  @Option(names = "--runs", defaultValue = "100", paramLabel = "N",
      description = "Timed batch-1 runs (batch-32 runs are a fifth of it; default: ${DEFAULT-VALUE}).")
  int runs;

  @Mixin OutputOptions output;

  @Override
  public Integer call() throws VitqException {
    Reports.Compare c = Vitq.compare(CompareRequest.of(ref, models, data).withThreads(threads.get()).withRuns(runs),
        output.progress());
    PrintWriter pw = spec.commandLine().getOut();
    if (output.json) {
      pw.println(Json.write(c.rows()));
    } else {
      double refB1 = c.rows().get(0).batch1MedianMs();
      double refB32 = c.rows().get(0).batch32MedianMs();
      boolean embedding = c.rows().get(0).embedding() != null;
      pw.println(embedding
          ? "| model | 1-NN accuracy | cosine mean | cosine 1st pct | retrieval agreement | size (bytes) "
              + "| batch 1 median ms | batch 32 median ms | b32 speed-up |"
          : "| model | top-1 | agreement | size (bytes) | batch 1 median ms | batch 32 median ms | b32 speed-up |");
      pw.println(embedding ? "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
          : "| --- | --- | --- | --- | --- | --- | --- |");
      for (Reports.Compare.Row r : c.rows()) {
        String measures;
        if (embedding) {
          Reports.EmbeddingMeasures e = r.embedding();
          measures = String.format("%s | %.5f | %.5f | %.4f", e.nearestNeighbourAccuracy() == null ? "-"
              : String.format("%.4f", e.nearestNeighbourAccuracy()), e.cosineMean(), e.cosineP1(),
              e.retrievalAgreement());
        } else {
          measures = String.format("%s | %.4f", r.top1() == null ? "-" : String.format("%.4f", r.top1()),
              r.agreement());
        }
        pw.printf("| %s | %s | %,d | %.2f (%.2fx) | %.1f | %.2fx |%n", r.model(), measures, r.bytes(),
            r.batch1MedianMs(), r.batch1MedianMs() / refB1, r.batch32MedianMs(), refB32 / r.batch32MedianMs());
      }
    }
    pw.flush();
    return 0;
  }
}
