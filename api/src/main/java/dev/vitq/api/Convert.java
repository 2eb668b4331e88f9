package dev.vitq.api;

import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;

/** The convert job: a model re-written through the IR, ViT or not. */
final class Convert {
  private Convert() {}

  /**
   * Re-writes a model through the IR, ViT or not. The output holds every node, attribute, initializer and metadata
   * entry of the input; it appears complete or not at all.
   *
   * @throws VitqException if the input is not a well-formed ONNX model or the output cannot be written
   */
  static ConvertReport convert(ConvertRequest r) throws VitqException {
    long t0 = System.nanoTime();
    Model model = OnnxReader.read(r.input());
    long t1 = System.nanoTime();
    OnnxWriter.write(model, r.output(), r.placement());
    long t2 = System.nanoTime();
    return new ConvertReport(r.output(), (t1 - t0) / 1e6, (t2 - t1) / 1e6);
  }
}
