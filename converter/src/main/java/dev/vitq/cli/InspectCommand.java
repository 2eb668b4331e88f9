package dev.vitq.cli;

import dev.vitq.converter.ModelSummary;
import dev.vitq.converter.Vitq;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import java.nio.file.Path;
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
    description = "Show a model's versions, inputs and outputs, parameter count and recognised ViT structure.")
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
      out.printf("  %,d parameters%n", s.params());
      out.printf("ViT: %d blocks, width %d, %d heads, %d tokens (image %d, patch %d), %d classes%n",
          s.blocks().size(), s.embedDim(), s.heads(), s.tokens(), s.imageSize(), s.patchSize(), s.classes());
      out.printf("  norm %s, GELU %s, q/k/v %s, linear %s, pooling %s%n", s.spelling().get("norm"),
          s.spelling().get("gelu"), s.spelling().get("qkv"), s.spelling().get("linear"), s.spelling().get("pooling"));
      out.printf("  embedding: %s%n", s.embedding().get("conv"));
      for (Map<String, Object> b : s.blocks()) {
        out.printf("  block %s:%n", b.get("index"));
        b.forEach((k, v) -> {
          if (!k.equals("index")) {
            out.printf("    %-9s %s%n", k, v);
          }
        });
      }
      out.printf("  head: %s -> %s%n", s.head().get("norm"), s.head().get("linear"));
    }
    out.flush();
    return 0;
  }
}
