package dev.vitq.cli;

import dev.vitq.converter.Reports;
import dev.vitq.converter.Vitq;
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

/** {@code vitq bench MODEL [--batch N] [--threads N]}. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = "Time a model in ONNX Runtime on a fixed random batch: median and 90th percentile latency, "
        + "throughput.")
final class BenchCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "MODEL", description = "The ONNX model.")
  Path model;

  @Option(names = "--batch", defaultValue = "1", paramLabel = "N", description = "Images per run (default: 1).")
  int batch;

  @Mixin ThreadsOption threads;

  @Option(names = "--runs", defaultValue = "50", paramLabel = "N", description = "Timed runs (default: 50).")
  int runs;

  @Option(names = "--json", description = "Print JSON instead of text.")
  boolean json;

  @Override
  public Integer call() throws VitqException {
    Reports.Bench r = Vitq.bench(model, batch, threads.get(), runs);
    PrintWriter pw = spec.commandLine().getOut();
    if (json) {
      pw.println(Json.write(r));
    } else {
      pw.printf("%s, batch %d: median %.2f ms, p90 %.2f ms, %.1f images/s (%d runs)%n", r.model(), r.batch(),
          r.medianMillis(), r.p90Millis(), r.imagesPerSecond(), r.runs());
    }
    pw.flush();
    return 0;
  }
}
