package dev.vitq.cli;

import dev.vitq.api.BenchRequest;
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

/** {@code vitq bench MODEL [--batch N] [--threads N]}, or {@code vitq bench --bundle DIR}. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = {"Time a model in ONNX Runtime on a fixed random batch: median and 90th percentile latency, "
        + "throughput.",
        "With --bundle, time a device/cloud bundle: device latency, cloud latency and bytes per image."})
final class BenchCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "The ONNX model.")
  Path model;

  @Option(names = "--bundle", paramLabel = "DIR", description = "A bundle written by vitq export, instead of MODEL.")
  Path bundle;

  @Option(names = "--batch", defaultValue = "1", paramLabel = "N", description = "Images per run (default: 1).")
  int batch;

  @Mixin ThreadsOption threads;

  @Option(names = "--runs", defaultValue = "50", paramLabel = "N", description = "Timed runs (default: 50).")
  int runs;

  @Option(names = "--json", description = "Print JSON instead of text.")
  boolean json;

  private BenchRequest request(Path target) throws VitqException {
    return BenchRequest.of(target).withBatch(batch).withThreads(threads.get()).withRuns(runs);
  }

  @Override
  public Integer call() throws VitqException {
    if ((model == null) == (bundle == null)) {
      throw new VitqException("Pass a MODEL or --bundle DIR, one of them.");
    }
    PrintWriter out = spec.commandLine().getOut();
    if (bundle != null) {
      Reports.BundleBench b = Vitq.benchBundle(request(bundle));
      out.println(json ? Json.write(b) : String.format("%s, batch %d: device median %.2f ms, cloud median %.2f ms, "
          + "%,d bytes per image cross (%d runs)", b.bundle(), b.batch(), b.deviceMedianMillis(),
          b.cloudMedianMillis(), b.bytesPerImage(), b.runs()));
      out.flush();
      return 0;
    }
    Reports.Bench r = Vitq.bench(request(model));
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
