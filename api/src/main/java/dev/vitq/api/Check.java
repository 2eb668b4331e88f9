package dev.vitq.api;

import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.check.CheckReport;
import dev.vitq.converter.check.EpCheck;
import dev.vitq.converter.check.ExecutionProvider;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.LocalFunctions;
import dev.vitq.models.onnx.OnnxReader;

/** The check job: a model against an execution provider's operator table, as ONNX Runtime would partition it. */
final class Check {
  private Check() {}

  /**
   * Checks a model against a provider.
   *
   * @throws VitqException if the provider is unknown, the batch size negative or the model unreadable
   */
  static CheckReport check(CheckRequest r) throws VitqException {
    ExecutionProvider ep = ExecutionProvider.ofCliName(r.ep());
    if (r.batch() < 0) {
      throw new VitqException("--batch must be 1 or more (or 0 for the model as written), got " + r.batch() + ".");
    }
    String name = ModelFiles.fileName(r.model());
    // ONNX Runtime inlines local functions when it loads a model, before any provider sees the graph.
    Model model = LocalFunctions.inline(OnnxReader.read(r.model()), name);
    return EpCheck.check(model, name, ep, r.batch());
  }
}
