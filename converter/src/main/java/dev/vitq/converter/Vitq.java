package dev.vitq.converter;

import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.nio.file.Path;
import java.util.Objects;

/**
 * The vitq Java API: what the command line does, callable from a model-build pipeline.
 *
 * {@snippet lang="java" :
 * ModelSummary s = Vitq.inspect(Path.of("vit.onnx"));
 * Vitq.convert(Path.of("vit.onnx"), Path.of("copy.onnx"), OnnxWriter.Placement.AUTO);
 * }
 *
 * <p>Every method reports unusable input as a {@link VitqException} whose message is one sentence.
 */
public final class Vitq {
  private Vitq() {}

  /**
   * A model read from disk, checked, and recognised as a ViT.
   *
   * @param path where it was read from
   * @param model the graph
   * @param vit its ViT structure
   */
  public record LoadedModel(Path path, Model model, VitStructure vit) {}

  /**
   * Reads, checks and recognises a model.
   *
   * @throws VitqException if the file is not a well-formed ONNX ViT
   */
  public static LoadedModel load(Path path) throws VitqException {
    Objects.requireNonNull(path, "path");
    Model model = OnnxReader.read(path);
    return new LoadedModel(path, model, VitRecognizer.recognize(model, fileName(path)));
  }

  /**
   * Summarises a model's structure.
   *
   * @throws VitqException if the file is not a well-formed ONNX ViT
   */
  public static ModelSummary inspect(Path path) throws VitqException {
    LoadedModel m = load(path);
    return ModelSummary.of(fileName(path), m.model(), m.vit());
  }

  /**
   * Re-writes a ViT through the IR. The output holds every node, attribute, initializer and metadata entry of the
   * input; it appears complete or not at all.
   *
   * @throws VitqException if the input is not a well-formed ONNX ViT or the output cannot be written
   */
  public static ConvertReport convert(Path in, Path out, OnnxWriter.Placement placement) throws VitqException {
    Objects.requireNonNull(out, "out");
    long t0 = System.nanoTime();
    LoadedModel m = load(in);
    long t1 = System.nanoTime();
    OnnxWriter.write(m.model(), out, placement);
    long t2 = System.nanoTime();
    return new ConvertReport(out, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
  }

  /**
   * What a conversion did.
   *
   * @param output the written model
   * @param importMillis reading, checking and recognising the input
   * @param exportMillis writing the output
   */
  public record ConvertReport(Path output, double importMillis, double exportMillis) {}

  static String fileName(Path p) {
    return p.getFileName() == null ? p.toString() : p.getFileName().toString();
  }
}
