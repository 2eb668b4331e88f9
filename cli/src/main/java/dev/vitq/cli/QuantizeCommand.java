package dev.vitq.cli;

import dev.vitq.api.QuantizeRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.Technique;
import dev.vitq.quantizer.search.AutoSearch;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq quantize [MODEL] --calib DIR --scheme S -o OUT}. */
@Command(
    name = "quantize",
    mixinStandardHelpOptions = true,
    description = {
        "Calibrate a float ViT on images and write a quantized ONNX model that ONNX Runtime runs with integer "
            + "kernels.",
        "Without MODEL, quantizes an embedded demo ViT (DeiT-Tiny shape, 32x32 input, seeded weights) on synthetic "
            + "images."})
final class QuantizeCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "The float ONNX ViT.")
  Path model;

  @Option(names = "--calib", paramLabel = "DIR",
      description = "Calibration images: JPEG/PNG in a flat folder or in class sub-folders (not read by w8-dynamic "
          + "and fp16).")
  Path calib;

  @Mixin SchemeOptions quantization;

  @Option(names = "--search", defaultValue = QuantizeRequest.DEFAULT_SEARCH, paramLabel = "S",
      description = "Scale search after calibration: none, or evolq (Evol-Q: block-wise evolutionary search of the "
          + "scales against the float model's outputs) (default: ${DEFAULT-VALUE}).")
  String search;

  @Mixin SearchOptions searchOptions;

  @Option(names = "--max-bytes", defaultValue = "0", paramLabel = "N",
      description = "With --scheme auto (required there): the largest model to ship, in bytes of the ONNX file. The "
          + "search finds the Pareto front of size against loss and ships the point that fits with the highest "
          + "agreement on held-out calibration images; when none does, it says the smallest size reached and writes "
          + "nothing.")
  long maxBytes;

  @Option(names = "--max-latency-ms", defaultValue = "0", paramLabel = "MS",
      description = "With --scheme auto: ship only a front point whose median batch-1 latency, measured on this "
          + "machine while searching, is at most MS milliseconds (default: no limit).")
  double maxLatencyMillis;

  @Option(names = "--max-drop", paramLabel = "D",
      description = "An accuracy budget: the largest drop from the float model allowed on the --val images, in top-1 "
          + "(a classifier on class sub-folders), in agreement with the float model's top-1 (a classifier on a flat "
          + "folder) or in mean output cosine (an embedding model), e.g. 0.01. While the drop is larger, the part that "
          + "loses most (embedding, block or head, by its sensitivity on calibration images) is raised: activations "
          + "to 8 bits, then weights to 8 bits, then float; one pass over the --val images per raise. When no raise "
          + "meets it, it says so and writes nothing. With --scheme auto, the point chosen within --max-bytes is "
          + "raised only as far as --max-bytes allows.")
  Double maxDrop;

  @Option(names = "--val", paramLabel = "DIR",
      description = "With --max-drop: held-out images the drop is measured on, none of them calibration images.")
  Path val;

  @Option(names = "--val-limit", defaultValue = "0", paramLabel = "N",
      description = "With --max-drop: measure on a seeded sample of N of the --val images (default: all).")
  int valLimit;

  @Option(names = "--auto-population", paramLabel = "N",
      description = "With --scheme auto: candidates per generation, the four uniform schemes among the first "
          + "(default: 24).")
  Integer autoPopulation;

  @Option(names = "--auto-generations", paramLabel = "N",
      description = "With --scheme auto: generations of the search (default: 16).")
  Integer autoGenerations;

  @Option(names = "--quantizers", defaultValue = "default", paramLabel = "LIST",
      description = "Quantizers beyond per-tensor uniform ones: 'default' (the scheme's measured choice), 'none', "
          + "or a comma-separated list of default (adding to it), ln-reparam (post-LayerNorm activations per "
          + "channel, folded into the norm and the next layer), log-sqrt2-softmax (softmax below 8 bits on a "
          + "log-sqrt(2) grid), "
          + "twin-gelu (GELU outputs below 8 bits with one scale per side of zero), norm-input-8bit (layer-norm "
          + "inputs at 8 bits when activations are narrower), norm-input-factors (layer-norm inputs on one scale "
          + "with power-of-two channel factors, not one range), image-8bit (the image entering the patch embedding "
          + "at 8 bits when activations are narrower), float-norm-input (layer-norm inputs left in float), "
          + "float-attention (queries, keys, values and attention probabilities left in float), gptq (linear "
          + "weights rounded with GPTQ's error compensation), bias-correction (linear biases corrected by the mean "
          + "output error of the quantized weights) and patch-bias-correction (the patch embedding's bias corrected "
          + "by the quantized image's mean rounding error).")
  String quantizers;

  @Option(names = "--seed", defaultValue = "0", paramLabel = "N", description = "Seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--plan-out", paramLabel = "PLAN.json", description = "Also write the quantization plan.")
  Path planOut;

  @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.onnx", description = "The quantized model.")
  Path out;

  @Mixin FormatOption format;
  @Mixin TargetOption target;

  @Mixin ThreadsOption threads;

  @Option(names = "--batch", defaultValue = "" + QuantizeRequest.DEFAULT_BATCH, paramLabel = "N",
      description = "Images decoded at a time while calibrating; a run takes fewer when their activations would pass "
          + "256 MiB (default: ${DEFAULT-VALUE}).")
  int batch;

  @Mixin PreprocessOptions preprocess;

  @Mixin OutputOptions output;

  @Override
  public Integer call() throws VitqException {
    if (batch <= 0) {
      throw new VitqException("--batch must be positive, got " + batch + ".");
    }
    QuantizeRequest r = QuantizeRequest.of(model, calib, out)
        .withScheme(quantization.scheme())
        .withMethod(quantization.method())
        .withSearch(search)
        .withSeed(seed)
        .withPlanOut(planOut)
        .withFormat(format.get())
        .withTarget(target.get())
        .withPreprocess(preprocess.flags())
        .withThreads(threads.get())
        .withBatchSize(batch)
        .withSearchSettings(searchOptions.settings())
        .withResume(searchOptions.resume)
        .withReportDir(searchOptions.report)
        .withMaxBytes(maxBytes)
        .withMaxLatencyMillis(maxLatencyMillis)
        .withAutoSettings(Names.parse(this::autoSettings))
        .withMaxDrop(maxDrop, val)
        .withValidationLimit(valLimit);
    if (!quantizers.equals("default")) {
      Scheme scheme = r.scheme();
      r = r.withTechniques(Names.parse(() -> Technique.ofCliNames(quantizers, scheme)));
    }
    Reports.Quantize report = Vitq.quantize(r, output.progress());
    PrintWriter pw = spec.commandLine().getOut();
    if (output.json) {
      pw.println(Json.write(report));
    } else {
      if (calib != null && quantization.scheme().dataFree()) {
        pw.printf("--calib not read: %s is written without calibration images.%n", report.scheme());
      }
      if (quantization.scheme().dataFree()) {
        if (!report.recognised() && report.scheme().equals("fp16")) {
          pw.printf("%s Its norms, if spelled out, compute in float16 too (a recognised ViT's compute in float32).%n",
              report.notRecognisedReason());
        }
        pw.printf("quantized %s (%s, no calibration) -> %s: %,d bytes, %d %s in %.1f s%n", report.source(),
            report.scheme(), report.output(), report.bytes(), report.quantizedTensors(),
            report.scheme().equals("fp16") ? "float16 tensors" : "linear layers with int8 weights",
            report.totalMillis() / 1000.0);
        pw.flush();
        return 0;
      }
      if (!report.recognised()) {
        pw.printf("%s Quantized generically, as ONNX Runtime's quantizer would (every MatMul, Gemm and Conv with a "
            + "weight); the ViT-specific parts are off: LayerNorm channel factors, log2 softmax, per-block search.%n",
            report.notRecognisedReason());
      }
      pw.printf("quantized %s (%s, %s, search %s) -> %s: %,d bytes, %d tensors quantized, %d calibration images%s"
              + " in %.1f s%n", report.source(), report.scheme(), report.method(), report.search(), report.output(),
          report.bytes(), report.quantizedTensors(), report.calibrationImages(),
          report.skippedImages() > 0 ? " (" + report.skippedImages() + " skipped)" : "",
          report.totalMillis() / 1000.0);
      Reports.Search s = report.searchReport();
      if (s != null) {
        pw.printf("search %s/%s, genes per %s, on %s: %d block visits, %d changed; loss %.4f -> %.4f; held-out "
                + "agreement %s -> %s (%d images); %,d candidates in %.1f s = %.1fx one float pass over the "
                + "calibration set%s%n",
            s.strategy(), s.objective(), s.genes(), s.inputs(), s.blockVisits(), s.blocksChanged(), s.lossBefore(),
            s.lossAfter(),
            fmt(s.heldOutAgreementBefore()), fmt(s.heldOutAgreementAfter()), s.heldOutImages(), s.evaluations(),
            s.searchSeconds(), s.costRatio(), s.reportDir() == null ? "" : "; report in " + s.reportDir());
      }
      Reports.Auto auto = report.auto();
      if (auto != null) {
        pw.printf("mixed-precision search: %,d candidates in %.1f s = %.1fx one float pass over the calibration set; "
                + "front (loss on %d images, agreement on %d held-out, latency at batch 1 on this machine):%n",
            auto.evaluations(), auto.searchSeconds(), auto.costRatio(), auto.searchImages(), auto.heldOutImages());
        for (Reports.FrontPoint p : auto.front()) {
          pw.printf("  %s %,11d bytes  loss %.4f  agreement %s  %.2f ms  %s%n", p.name().equals(auto.shipped()) ? "*"
              : p.withinBudget() ? "+" : " ", p.bytes(), p.loss(), fmt(p.heldOutAgreement()), p.latencyMillis(),
              p.name());
        }
        pw.printf("shipped %s (* above; + marks the other points within budget)%n", auto.shipped());
      }
      Reports.Budget budget = report.budget();
      if (budget != null) {
        printBudget(pw, budget);
      }
      if (report.plan() != null) {
        pw.printf("plan written to %s%n", report.plan());
      }
    }
    pw.flush();
    return 0;
  }

  private static void printBudget(PrintWriter pw, Reports.Budget b) {
    pw.printf("accuracy budget: drop in %s at most %s on %,d held-out images of %s (float %.4f); %d passes over "
            + "them in %.1f s%n", b.measure(), b.maxDrop(), b.images(), b.heldOut(), b.floatScore(), b.evaluations(),
        b.seconds());
    pw.printf("  start %-28s %,11d bytes  %s %.4f  drop %.4f%n", b.start(), b.startBytes(), b.measure(),
        b.startScore(), b.startDrop());
    for (Reports.Raise x : b.raised()) {
      pw.printf("  %-34s %,11d bytes  %s %.4f  drop %.4f  (part SQNR %.1f dB)%n", x.part() + " " + x.to(), x.bytes(),
          b.measure(), x.score(), x.drop(), x.sqnrDb());
    }
    pw.printf("shipped %s: drop %.4f%s%n", b.raised().isEmpty() ? "the start, nothing raised"
        : "after " + b.raised().size() + (b.raised().size() == 1 ? " raise" : " raises"), b.drop(),
        b.overBytes() > 0 ? " (" + b.overBytes() + " raises left out: over --max-bytes)" : "");
  }

  private AutoSearch.Settings autoSettings() {
    AutoSearch.Settings s = AutoSearch.Settings.defaults();
    if (autoPopulation != null) {
      s = s.withPopulation(autoPopulation);
    }
    if (autoGenerations != null) {
      s = s.withGenerations(autoGenerations);
    }
    return s;
  }

  private static String fmt(Double d) {
    return d == null ? "n/a" : String.format("%.4f", d);
  }
}
