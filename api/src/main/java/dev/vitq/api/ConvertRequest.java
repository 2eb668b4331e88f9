package dev.vitq.api;

import dev.vitq.models.onnx.OnnxWriter;
import java.nio.file.Path;
import java.util.Objects;

/**
 * What {@link Vitq#convert} is asked to do: re-write a model through vitq's graph IR, losslessly.
 *
 * {@snippet lang="java" :
 * Vitq.convert(ConvertRequest.of(Path.of("vit.onnx"), Path.of("copy.onnx")).withExternalData(true));
 * }
 *
 * @param input the ONNX model to read
 * @param output where to write it
 * @param placement where tensor data goes
 */
public record ConvertRequest(Path input, Path output, OnnxWriter.Placement placement) {
  public ConvertRequest {
    Objects.requireNonNull(input, "input");
    Objects.requireNonNull(output, "output");
    Objects.requireNonNull(placement, "placement");
  }

  /** Weights embedded unless they come near protobuf's 2 GiB limit. */
  public static ConvertRequest of(Path input, Path output) {
    return new ConvertRequest(input, output, OnnxWriter.Placement.AUTO);
  }

  /** Weights in {@code OUT.data} beside the model (or embedded, when false, as far as the format allows). */
  public ConvertRequest withExternalData(boolean external) {
    return new ConvertRequest(input, output, external ? OnnxWriter.Placement.EXTERNAL : OnnxWriter.Placement.AUTO);
  }
}
