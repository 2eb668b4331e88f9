package dev.vitq.cli;

import dev.vitq.converter.PreprocessFlags;
import dev.vitq.converter.QuantizeRequest;
import dev.vitq.converter.Reports;
import dev.vitq.converter.Vitq;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
    if (runs < 5) {
      throw new VitqException("--runs must be at least 5, got " + runs + ".");
    }
    List<Path> all = new ArrayList<>();
    all.add(ref);
    all.addAll(models);
    List<Reports.Eval> evals = Vitq.evaluateAll(all, data, ref, PreprocessFlags.NONE, threads.get(),
        QuantizeRequest.DEFAULT_BATCH, output.progress());
    List<Map<String, Object>> rows = new ArrayList<>();
    for (int i = 0; i < all.size(); i++) {
      Path m = all.get(i);
      Reports.Eval e = evals.get(i);
      Reports.Bench b1 = Vitq.bench(m, 1, threads.get(), runs);
      Reports.Bench b32 = Vitq.bench(m, 32, threads.get(), Math.max(5, runs / 5));
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("model", m.getFileName().toString());
      row.put("top1", e.top1());
      row.put("agreement", e.agreement());
      row.put("bytes", ConvertCommand.size(m));
      row.put("batch1_median_ms", b1.medianMillis());
      row.put("batch32_median_ms", b32.medianMillis());
      rows.add(row);
    }
    PrintWriter pw = spec.commandLine().getOut();
    if (output.json) {
      pw.println(Json.write(rows));
    } else {
      double refB1 = (double) rows.get(0).get("batch1_median_ms");
      double refB32 = (double) rows.get(0).get("batch32_median_ms");
      pw.println("| model | top-1 | agreement | size (bytes) | batch 1 median ms | batch 32 median ms | b32 speed-up |");
      pw.println("| --- | --- | --- | --- | --- | --- | --- |");
      for (Map<String, Object> r : rows) {
        double b1 = (double) r.get("batch1_median_ms");
        double b32 = (double) r.get("batch32_median_ms");
        pw.printf("| %s | %s | %.4f | %,d | %.2f (%.2fx) | %.1f | %.2fx |%n", r.get("model"),
            r.get("top1") == null ? "-" : String.format("%.4f", (Double) r.get("top1")), (Double) r.get("agreement"),
            (Long) r.get("bytes"), b1, b1 / refB1, b32, refB32 / b32);
      }
    }
    pw.flush();
    return 0;
  }
}
