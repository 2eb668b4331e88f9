package dev.vitq.cli;

import dev.vitq.api.CheckRequest;
import dev.vitq.api.Vitq;
import dev.vitq.converter.check.CheckReport;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq check MODEL --ep qnn|nnapi|coreml|xnnpack [--batch N] [--json]}. */
@Command(
    name = "check",
    mixinStandardHelpOptions = true,
    description = "Show which nodes of a model an ONNX Runtime execution provider (QNN, NNAPI, CoreML, XNNPACK) "
        + "would take, in how many partitions, and which go back to the CPU and why.")
final class CheckCommand implements Callable<Integer> {
  /** Rows of the CPU table shown in text; --json has them all. */
  private static final int ROWS = 20;

  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "MODEL", description = "The ONNX model (float, QDQ, or with contrib ops).")
  Path model;

  @Option(names = "--ep", required = true, paramLabel = "EP",
      description = "The execution provider: qnn, nnapi, coreml or xnnpack.")
  String ep;

  @Option(names = "--batch", defaultValue = "1", paramLabel = "N",
      description = "Fix the inputs' symbolic batch dimension to N first, as a device runs the model (NNAPI and QNN "
          + "need fixed shapes); default 1; 0 checks the model as written, batch symbolic.")
  int batch;

  @Option(names = "--json", description = "Print JSON instead of text.")
  boolean json;

  @Override
  public Integer call() throws VitqException {
    CheckReport r = Vitq.check(new CheckRequest(model, ep, batch));
    PrintWriter out = spec.commandLine().getOut();
    if (json) {
      out.println(Json.write(r));
      out.flush();
      return 0;
    }
    out.printf("%s on %s%s: %,d of %,d nodes in %d partition%s (%,d more fold away when ONNX Runtime loads it)%n",
        r.model(), r.provider(), r.batch() == null ? "" : ", batch " + r.batch(), r.supportedNodes(), r.nodes(),
        r.partitions(), r.partitions() == 1 ? "" : "s", r.folded());
    if (!r.partitionSizes().isEmpty()) {
      out.printf("  partition sizes: %s%n",
          r.partitionSizes().stream().map(String::valueOf).collect(Collectors.joining(", ")));
    }
    if (r.partitions() > 1) {
      out.printf("  %d cuts between %s and the CPU%s%n", r.partitions() - 1, r.ep(),
          r.copiesAtCuts() ? ", each a copy between memories" : " (same memory: no copies)");
    }
    if (r.cpu().isEmpty()) {
      out.printf("  nothing goes back to the CPU%n");
    } else {
      out.printf("  to the CPU (%,d nodes):%n", r.nodes() - r.supportedNodes());
      out.printf("    %5s  %-36s %-9s %s%n", "nodes", "operator", "kind", "reason (first node)");
      r.cpu().stream().limit(ROWS).forEach(g -> out.printf("    %5d  %-36s %-9s %s (%s)%n", g.nodes(), g.op(),
          g.kind().name().toLowerCase(java.util.Locale.ROOT), g.reason(), g.example()));
      if (r.cpu().size() > ROWS) {
        out.printf("    ... %d more reasons; --json lists every node%n", r.cpu().size() - ROWS);
      }
    }
    boolean dynamic = r.cpu().stream().anyMatch(g -> g.kind() == CheckReport.Kind.SHAPE);
    if (dynamic && r.batch() == null) {
      out.printf("  the model has dynamic shapes, which %s does not take: --batch N checks it as a device runs it%n",
          r.ep());
    }
    out.flush();
    return 0;
  }
}
