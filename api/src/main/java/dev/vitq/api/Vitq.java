package dev.vitq.api;

import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.ModelSummary;
import dev.vitq.converter.Provenance;
import dev.vitq.converter.check.CheckReport;
import dev.vitq.models.VitqException;
import dev.vitq.server.DecoderServer;
import dev.vitq.server.ServeRequest;
import java.nio.file.Path;
import java.util.List;

/**
 * The vitq Java API: what the command line does, callable from a model-build pipeline. Each method hands its request
 * to the class that does that job ({@code Quantize}, {@code Export}, {@code Evaluate}, {@code Bench}, {@code Compare},
 * {@code Convert}; serving is the server module's {@link DecoderServer}).
 *
 * {@snippet lang="java" :
 * ModelSummary s = Vitq.inspect(Path.of("vit.onnx"));
 * Vitq.convert(ConvertRequest.of(Path.of("vit.onnx"), Path.of("copy.onnx")));
 * }
 *
 * <p>Every method reports unusable input as a {@link VitqException} whose message is one sentence.
 */
public final class Vitq {
  /** The searches {@link #quantize} knows. */
  public static final List<String> SEARCHES = Quantize.SEARCHES;

  private Vitq() {}

  /**
   * Reads, checks, canonicalises and recognises a model; shapes are folded for the image size the flags or the
   * model's metadata give (else its input's, else the one its position embedding implies).
   *
   * @throws VitqException if the file is not a well-formed ONNX model
   */
  public static LoadedModel load(Path path, PreprocessFlags flags) throws VitqException {
    return LoadedModel.load(path, flags);
  }

  /**
   * Summarises a model: its graph always, its ViT structure when recognised, else the reason.
   *
   * @throws VitqException if the file is not a well-formed ONNX model
   */
  public static ModelSummary inspect(Path path) throws VitqException {
    LoadedModel m = LoadedModel.load(path, PreprocessFlags.NONE);
    return ModelSummary.of(ModelFiles.fileName(path), m.original(), m.model(), m.recognition());
  }

  /**
   * Checks which nodes of a model an execution provider (QNN, NNAPI, CoreML, XNNPACK) would take and how ONNX
   * Runtime would partition them; the rest goes back to the CPU, each node with the reason.
   *
   * @throws VitqException if the provider is unknown or the model cannot be read
   */
  public static CheckReport check(CheckRequest r) throws VitqException {
    return Check.check(r);
  }

  /**
   * Re-writes a model through the IR, ViT or not. The output holds every node, attribute, initializer and metadata
   * entry of the input; it appears complete or not at all.
   *
   * @throws VitqException if the input is not a well-formed ONNX model or the output cannot be written
   */
  public static ConvertReport convert(ConvertRequest r) throws VitqException {
    return Convert.convert(r);
  }

  /**
   * Calibrates a float ViT, builds its quantization plan and writes the deployable quantized model: integer weights,
   * QuantizeLinear/DequantizeLinear around every quantized activation, the source's metadata kept and a
   * {@code vitq} provenance entry added. The output (and the plan) appear complete or not at all. With
   * {@code --scheme auto}, searches bits per block and ships the best point within the budgets.
   *
   * @throws VitqException if the model, the images or the options cannot be used
   */
  public static Reports.Quantize quantize(QuantizeRequest r, Progress progress) throws VitqException {
    return Quantize.quantize(r, progress);
  }

  /** Where a search writing {@code output} saves its state after every block: beside the output. */
  public static Path stateFile(Path output) {
    return Quantize.stateFile(output);
  }

  /**
   * Quantizes a float ViT and splits it after {@code split} blocks into a bundle: {@code device.onnx} (the model's
   * input; embedding and blocks 1..K; outputs the boundary tokens as 8-bit levels and what dequantizes them),
   * {@code cloud.onnx} (inputs named as the device's outputs; blocks K+1..N and the head; outputs the logits) and
   * {@code manifest.json}. The bundle appears complete or not at all.
   *
   * @throws VitqException if the model, the images, the plan or the options cannot be used
   */
  public static Reports.Export export(ExportRequest r, Progress progress) throws VitqException {
    return Export.export(r, progress, null);
  }

  /**
   * {@link #export(ExportRequest, Progress)}, then {@code report.html} in {@code reportDir} (null: no report): the
   * settings, the bundle's bytes against its agreement with the float model and, given calibration images, per-block
   * sensitivity.
   *
   * @throws VitqException if the model, the images, the plan or the options cannot be used
   */
  public static Reports.Export export(ExportRequest r, Progress progress, Path reportDir) throws VitqException {
    return Export.export(r, progress, reportDir);
  }

  /**
   * Measures top-1 accuracy over a folder of labelled images (class sub-folders) and, given a reference model, the
   * share of images on which both top-1 classes agree. A bundle runs device then cloud on every batch, and what the
   * device outputs (the 8-bit tokens and their dequantization values) is all the cloud model gets.
   *
   * @throws VitqException if a model, the bundle or the images cannot be used
   */
  public static Reports.Eval evaluate(EvalRequest r, Progress progress) throws VitqException {
    return Evaluate.evaluate(r, progress);
  }

  /**
   * {@link #evaluate(EvalRequest, Progress)}, then {@code report.html} in {@code reportDir} (null: no report).
   *
   * @throws VitqException if a model, the bundle or the images cannot be used
   */
  public static Reports.Eval evaluate(EvalRequest r, Progress progress, Path reportDir) throws VitqException {
    return Evaluate.evaluate(r, progress, reportDir);
  }

  /**
   * Measures the reference and each model on the same images and machine, in one run: top-1, agreement with the
   * reference, file size, batch-1 latency and batch-32 time (the table of BENCHMARKS.md).
   *
   * @throws VitqException if a model or the images cannot be used
   */
  public static Reports.Compare compare(CompareRequest r, Progress progress) throws VitqException {
    return Compare.compare(r, progress);
  }

  /**
   * Times a model in ONNX Runtime on a fixed random batch: the median and 90th percentile of {@code runs} timed runs
   * after five warm-up runs.
   *
   * @throws VitqException if the model cannot be loaded or run
   */
  public static Reports.Bench bench(BenchRequest r) throws VitqException {
    return Bench.bench(r);
  }

  /**
   * Times a bundle's two halves on a fixed random batch: the device model from the image, the cloud model from what
   * the device output; medians of {@code runs} timed runs after five warm-up runs each.
   *
   * @throws VitqException if the bundle cannot be loaded or run
   */
  public static Reports.BundleBench benchBundle(BenchRequest r) throws VitqException {
    return Bench.benchBundle(r);
  }

  /**
   * Starts a bundle's cloud decoder as an HTTP server ({@link DecoderServer}); close it to stop, after answering
   * the requests in flight.
   *
   * @throws VitqException if the bundle or the settings cannot be used, or the port is taken
   */
  public static DecoderServer serve(ServeRequest r) throws VitqException {
    return DecoderServer.start(r);
  }

  /** vitq's version, as Maven stamped it. */
  public static String version() {
    return Provenance.version();
  }
}
