package dev.vitq.cli;

import dev.vitq.api.ConvertReport;
import dev.vitq.api.ConvertRequest;
import dev.vitq.api.Vitq;
import dev.vitq.models.VitqException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq convert IN -o OUT}. */
@Command(
    name = "convert",
    mixinStandardHelpOptions = true,
    description = "Re-write a ViT through vitq's graph IR, keeping every node, attribute, weight and metadata entry.")
final class ConvertCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "IN", description = "The ONNX model to read.")
  Path in;

  @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "Where to write it.")
  Path out;

  @Option(names = "--external-data",
      description = "Keep weights in OUT.data beside the model (done anyway near protobuf's 2 GiB limit).")
  boolean externalData;

  @Option(names = "--json", description = "Print JSON instead of text.")
  boolean json;

  @Override
  public Integer call() throws VitqException {
    ConvertReport report = Vitq.convert(ConvertRequest.of(in, out).withExternalData(externalData));
    PrintWriter pw = spec.commandLine().getOut();
    long bytes = size(out);
    long peakHeap = peakHeapBytes();
    if (json) {
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("output", out.toString());
      r.put("bytes", bytes);
      r.put("import_ms", Math.round(report.importMillis()));
      r.put("export_ms", Math.round(report.exportMillis()));
      r.put("peak_heap_bytes", peakHeap);
      pw.println(Json.write(r));
    } else {
      pw.printf("wrote %s (%,d bytes; import %.0f ms, export %.0f ms, peak heap %,d MiB)%n", out, bytes,
          report.importMillis(), report.exportMillis(), peakHeap >> 20);
    }
    pw.flush();
    return 0;
  }

  /** The most heap the JVM has held so far, summed over its heap pools. */
  static long peakHeapBytes() {
    long sum = 0;
    for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == java.lang.management.MemoryType.HEAP) {
        sum += pool.getPeakUsage().getUsed();
      }
    }
    return sum;
  }

  static long size(Path p) {
    try {
      return Files.size(p);
    } catch (IOException e) {
      return -1;
    }
  }
}
