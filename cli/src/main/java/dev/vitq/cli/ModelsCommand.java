package dev.vitq.cli;

import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.EncoderFeatures;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.onnx.OnnxWriter;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code vitq models ...}: model configs and the builder. */
@Command(
    name = "models",
    mixinStandardHelpOptions = true,
    description = "Build ViT models with seeded random weights, for tests, examples and benchmarks.",
    subcommands = {ModelsCommand.Build.class})
final class ModelsCommand {

  /** {@code vitq models build}. */
  @Command(
      name = "build",
      mixinStandardHelpOptions = true,
      description = "Write a ViT of a given size and ONNX spelling with seeded random weights.")
  static final class Build implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--size", defaultValue = "tiny", description = "Preset: tiny, small, base or large (default: ${DEFAULT-VALUE}).")
    String size;

    @Option(names = "--image-size", defaultValue = "224", description = "Input side in pixels (default: ${DEFAULT-VALUE}).")
    int imageSize;

    @Option(names = "--patch", defaultValue = "16", description = "Patch side in pixels (default: ${DEFAULT-VALUE}).")
    int patch;

    @Option(names = "--classes", defaultValue = "1000", description = "Classes (default: ${DEFAULT-VALUE}).")
    int classes;

    @Option(names = "--width", description = "Token width, overriding the preset.")
    Integer width;

    @Option(names = "--depth", description = "Blocks, overriding the preset.")
    Integer depth;

    @Option(names = "--heads", description = "Attention heads, overriding the preset.")
    Integer heads;

    @Option(names = "--mlp", description = "MLP hidden width, overriding the preset (default: 4 x width).")
    Integer mlp;

    @Option(names = "--spelling", defaultValue = "timm-17",
        description = "ONNX spelling: timm-17, hf-13, dynamo-20, tanh-18 or torch-export-18 (default: ${DEFAULT-VALUE}).")
    String spelling;

    @Option(names = "--head", defaultValue = "classifier", paramLabel = "H",
        description = "What follows the final norm: classifier, pooled (the class token: a headless embedding model), "
            + "tokens, or attention-pool (a learned query attending to the tokens, then an MLP, as SigLIP's) "
            + "(default: ${DEFAULT-VALUE}).")
    String head;

    @Option(names = "--swiglu", description = "SwiGLU MLPs (SiLU(gate) times up, then fc2), as EVA-02's.")
    boolean swiglu;

    @Option(names = "--rotary", description = "A rotary position embedding on queries and keys.")
    boolean rotary;

    @Option(names = "--layer-scale", description = "A per-channel gamma on each branch before its residual add.")
    boolean layerScale;

    @Option(names = "--registers", defaultValue = "0", paramLabel = "N",
        description = "Register tokens after the class token (default: ${DEFAULT-VALUE}).")
    int registers;

    @Option(names = "--seed", defaultValue = "0", description = "Weight seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "Where to write it.")
    Path out;

    @Option(names = "--external-data", description = "Keep weights in OUT.data beside the model.")
    boolean externalData;

    @Option(names = "--json", description = "Print JSON instead of text.")
    boolean json;

    @Override
    public Integer call() throws VitqException {
      VitConfig config = config();
      Spelling s;
      try {
        s = Spelling.ofCliName(spelling);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(spec.commandLine(), e.getMessage());
      }
      EncoderFeatures features;
      try {
        EncoderFeatures.Output o = switch (head) {
          case "classifier" -> EncoderFeatures.Output.CLASSIFIER;
          case "pooled" -> EncoderFeatures.Output.POOLED;
          case "tokens" -> EncoderFeatures.Output.TOKENS;
          case "attention-pool" -> EncoderFeatures.Output.ATTENTION_POOL;
          default -> throw new IllegalArgumentException("Unknown head '" + head
              + "', expected one of [classifier, pooled, tokens, attention-pool].");
        };
        features = new EncoderFeatures(o, swiglu ? EncoderFeatures.Mlp.SWIGLU : EncoderFeatures.Mlp.GELU, rotary,
            layerScale, registers);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(spec.commandLine(), e.getMessage());
      }
      Model model;
      try {
        model = VitBuilder.build(config, s, features, seed);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(spec.commandLine(), e.getMessage());
      }
      OnnxWriter.write(model, out, externalData ? OnnxWriter.Placement.EXTERNAL : OnnxWriter.Placement.AUTO);
      PrintWriter pw = spec.commandLine().getOut();
      long bytes = ConvertCommand.size(out);
      if (json) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("output", out.toString());
        r.put("bytes", bytes);
        r.put("config", config);
        r.put("spelling", s.cliName());
        r.put("features", features);
        r.put("seed", seed);
        pw.println(Json.write(r));
      } else {
        pw.printf("wrote %s (%,d bytes): %d blocks, width %d, %d heads, image %d, patch %d, %d classes, %s%n", out,
            bytes, config.depth(), config.embedDim(), config.heads(), config.imageSize(), config.patchSize(),
            config.classes(), s.cliName());
      }
      pw.flush();
      return 0;
    }

    private VitConfig config() {
      try {
        VitConfig preset = switch (size) {
          case "tiny" -> VitConfig.tiny(imageSize, patch, classes);
          case "small" -> VitConfig.small(imageSize, patch, classes);
          case "base" -> VitConfig.base(imageSize, patch, classes);
          case "large" -> VitConfig.large(imageSize, patch, classes);
          default -> throw new IllegalArgumentException(
              "Unknown size '" + size + "', expected one of [tiny, small, base, large].");
        };
        int w = width != null ? width : preset.embedDim();
        return new VitConfig(imageSize, patch, 3, w, depth != null ? depth : preset.depth(),
            heads != null ? heads : preset.heads(), mlp != null ? mlp : (width != null ? 4 * w : preset.mlpDim()),
            classes);
      } catch (IllegalArgumentException e) {
        throw new ParameterException(spec.commandLine(), e.getMessage());
      }
    }
  }
}
