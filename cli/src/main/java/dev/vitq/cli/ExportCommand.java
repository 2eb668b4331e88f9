package dev.vitq.cli;

import dev.vitq.api.ExportRequest;
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

/** {@code vitq export MODEL --calib DIR --scheme S --split K [--keep-tokens F | --pool 2] -o BUNDLE}. */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    description = {
        "Quantize a float ViT and split it into a device encoder (embedding and the first K blocks, sending 8-bit "
            + "tokens, optionally fewer) and a cloud decoder (the rest), with a manifest: a bundle folder.",
        "Without token reduction the pair computes exactly what 'vitq quantize' with the same options writes."})
final class ExportCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "MODEL", description = "The float ONNX ViT.")
  Path model;

  @Option(names = "--calib", paramLabel = "DIR", description = "Calibration images (with --plan: for the weight "
      + "corrections the plan records, GPTQ say, redone on its scales; without them a plan's weights are rounded to "
      + "nearest).")
  Path calib;

  @Option(names = "--plan", paramLabel = "PLAN.json",
      description = "Use a plan written by 'vitq quantize --plan-out' (a searched one, say) instead of calibrating.")
  Path plan;

  @Option(names = "--split", required = true, paramLabel = "K", description = "Blocks on the device.")
  int split;

  @Mixin SchemeOptions quantization;

  @Option(names = "--keep-tokens", paramLabel = "F",
      description = "Send the class token and the share F of patch tokens the class token attends to most in "
          + "block K.")
  Double keepTokens;

  @Option(names = "--fuse", description = "With --keep-tokens: also send one token, the mean of the dropped patch "
      + "tokens weighted by the class token's attention (EViT).")
  boolean fuse;

  @Option(names = "--pool", paramLabel = "2", description = "Send the class token and the mean of every 2x2 square "
      + "of neighbouring patch tokens.")
  Integer pool;

  @Option(names = "--merge", paramLabel = "N", description = "Merge N patch tokens away with ToMe's bipartite soft "
      + "matching (each averaged into its most similar token of the other half).")
  Integer merge;

  @Option(names = "--max-bytes", paramLabel = "N", description = "Fit the boundary into N bytes per image: choose the "
      + "token reduction, a PCA projection and 8/6/4-bit codes that stay closest to the float model on calibration "
      + "images: top-1 agreement for a classifier, mean cosine of the outputs for an embedding model (needs --calib).")
  Long maxBytes;

  @Mixin FormatOption format;
  @Mixin TargetOption target;

  @Option(names = "--cloud-precision", defaultValue = "same", paramLabel = "P",
      description = "same (the cloud runs the quantized blocks) or fp32 (default: ${DEFAULT-VALUE}).")
  String cloudPrecision;

  @Option(names = "--seed", defaultValue = "0", paramLabel = "N", description = "Seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = {"-o", "--output"}, required = true, paramLabel = "BUNDLE", description = "The bundle folder.")
  Path out;

  @Option(names = "--report", paramLabel = "DIR",
      description = "Write report.html (settings, the split's bytes against agreement, per-block sensitivity) into "
          + "DIR.")
  Path report;

  @Mixin ThreadsOption threads;

  @Mixin PreprocessOptions preprocess;

  @Mixin OutputOptions output;

  @Override
  public Integer call() throws VitqException {
    if (!cloudPrecision.equals("same") && !cloudPrecision.equals("fp32")) {
      throw new VitqException("--cloud-precision must be same or fp32, got '" + cloudPrecision + "'.");
    }
    // 0 means "every token" in the request, so the command line refuses it here; the rest is checked by export.
    if (maxBytes != null && maxBytes <= 0) {
      throw new VitqException("--max-bytes must be positive, got " + maxBytes + ".");
    }
    if (merge != null && merge <= 0) {
      throw new VitqException("--merge must be positive, got " + merge + ".");
    }
    if (keepTokens != null && !(keepTokens > 0 && keepTokens <= 1)) {
      throw new VitqException("--keep-tokens must be in (0, 1], got " + keepTokens + ".");
    }
    ExportRequest r = ExportRequest.of(model, calib, out, split)
        .withScheme(quantization.scheme())
        .withMethod(quantization.method())
        .withKeepTokens(keepTokens == null || keepTokens == 1.0 ? 0 : keepTokens)
        .withFuse(fuse)
        .withPool(pool == null ? 0 : pool)
        .withMerge(merge == null ? 0 : merge)
        .withMaxBytes(maxBytes == null ? 0 : maxBytes)
        .withFormat(format.get())
        .withTarget(target.get())
        .withFloatCloud(cloudPrecision.equals("fp32"))
        .withSeed(seed)
        .withPlan(plan)
        .withPreprocess(preprocess.flags())
        .withThreads(threads.get());
    Reports.Export e = Vitq.export(r, output.progress(), report);
    PrintWriter pw = spec.commandLine().getOut();
    if (output.json) {
      pw.println(Json.write(e));
    } else {
      pw.printf("exported %s (%s) split after block %d of %d -> %s: device %,d bytes, cloud %,d bytes; %d of %d "
              + "tokens cross (%s), %,d bytes per image (every token in float32: %,d) in %.1f s%n", e.source(),
          e.scheme(),
          e.split(), e.depth(), e.bundle(), e.deviceBytes(), e.cloudBytes(), e.tokensOut(), e.tokensIn(),
          e.configuration(), e.bytesPerImage(), e.float32BytesPerImage(), e.totalMillis() / 1000.0);
      if (e.calibratedAgreement() != null) {
        for (var t : e.tried()) {
          pw.printf("  tried %s: %,d bytes, %s %.4f%n", t.configuration(), t.bytesPerImage(), e.measure(),
              t.agreement());
        }
        pw.printf("chosen: %s, %s %.4f on calibration images%n", e.configuration(), e.measure(),
            e.calibratedAgreement());
      }
    }
    pw.flush();
    return 0;
  }
}
