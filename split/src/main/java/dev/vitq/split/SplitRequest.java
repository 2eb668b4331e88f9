package dev.vitq.split;

import dev.vitq.calibration.Preprocessing;
import dev.vitq.converter.Format;
import dev.vitq.converter.Target;
import dev.vitq.models.Model;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.QuantPlan;
import java.nio.file.Path;
import java.util.Objects;

/**
 * What a split export ({@code SplitExport.write}) splits, and where the bundle goes.
 *
 * @param bundle the bundle folder
 * @param source the float model's path, as the manifest and the provenance record it
 * @param sourceSha256 the float model file's SHA-256
 * @param model the float model (canonical): the reference, and what a float cloud runs
 * @param shipped the float model the quantized halves are lowered from: {@code model}, or it with its weights and
 *     biases corrected
 * @param vit the model's structure
 * @param plan the quantization plan
 * @param preprocessing how images are prepared, for the manifest
 * @param split blocks on the device
 * @param reduction which tokens cross (ignored when {@code maxBytes} chooses)
 * @param floatCloud whether the cloud runs the float blocks
 * @param maxBytes the boundary's budget in bytes per image, or 0 for the plan's levels and {@code reduction}
 * @param format ONNX, ORT or both
 * @param target the runtime both halves are written for
 */
public record SplitRequest(Path bundle, Path source, String sourceSha256, Model model, Model shipped, VitStructure vit,
    QuantPlan plan, Preprocessing preprocessing, int split, Reduction reduction, boolean floatCloud, long maxBytes,
    Format format, Target target) {
  public SplitRequest {
    Objects.requireNonNull(target, "target");
    Objects.requireNonNull(bundle, "bundle");
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(reduction, "reduction");
    Objects.requireNonNull(format, "format");
  }
}
