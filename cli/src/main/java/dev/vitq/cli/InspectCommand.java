package dev.vitq.cli;

import dev.vitq.api.Vitq;
import dev.vitq.converter.ModelSummary;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq inspect MODEL [--json]}. */
@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    description = "Show a model's versions, inputs and outputs, parameters and operators, and its ViT structure when "
        + "vitq recognises one (else why not).")
final class InspectCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "MODEL", description = "The ONNX model.")
  Path model;

  @Option(names = "--json", description = "Print JSON instead of text.")
  boolean json;

  @Override
  public Integer call() throws VitqException {
    ModelSummary s = Vitq.inspect(model);
    PrintWriter out = spec.commandLine().getOut();
    if (json) {
      out.println(Json.write(s));
    } else {
      out.printf("%s: ONNX IR %d, opset %d, from %s%n", s.file(), s.irVersion(), s.opset(),
          s.producer().isEmpty() ? "an unnamed producer" : s.producer());
      s.inputs().forEach((k, v) -> out.printf("  input  %s %s%n", k, v));
      s.outputs().forEach((k, v) -> out.printf("  output %s %s%n", k, v));
      out.printf("  %,d parameters, %,d nodes (%,d once exporter noise is removed)%n", s.params(), s.nodes(),
          s.canonicalNodes());
      out.printf("  operators: %s%n", String.join(", ", s.operators().entrySet().stream()
          .map(e -> e.getKey() + " " + e.getValue()).toList()));
      ModelSummary.Vit v = s.vit();
      if (v == null) {
        out.printf("ViT: not recognised: %s%n", s.reason());
        out.printf("  quantize works generically on it (every MatMul, Gemm and Conv with a weight); the "
            + "transformer-specific parts (LayerNorm channel factors, log2 softmax, the per-block search, the "
            + "device/cloud split) are off.%n");
      } else {
        String output = v.classes() > 0 ? v.classes() + " classes" : v.spelling().get("output") + " output";
        out.printf("ViT: recognised: %d blocks, width %d, %d heads, %d tokens (%d before the patches; image %d, "
                + "patch %d), %s%n", v.depth(), v.embedDim(), v.heads(), v.tokens(), v.prefixTokens(),
            v.imageSize(), v.patchSize(), output);
        out.printf("  %s%n", String.join(", ", v.spelling().entrySet().stream()
            .map(e -> e.getKey().replace('_', ' ') + " " + e.getValue()).toList()));
        out.printf("  embedding: %s%n", v.embedding().get("conv"));
        for (Map<String, Object> b : v.blocks()) {
          out.printf("  block %s:%n", b.get("index"));
          b.forEach((k, x) -> {
            if (!k.equals("index")) {
              out.printf("    %-9s %s%n", k, x);
            }
          });
        }
        out.printf("  head: %s -> %s%s%n", v.head().get("norm"),
            ((List<?>) v.head().get("pool_linears")).isEmpty() ? "" : "attention pool " + v.head().get("pool_linears")
                + " -> ", v.head().get("linears"));
      }
    }
    out.flush();
    return 0;
  }
}
