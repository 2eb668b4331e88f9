package dev.vitq.api;

import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.Deploy;
import dev.vitq.converter.Provenance;
import dev.vitq.converter.Target;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.canon.Float32;
import dev.vitq.models.onnx.LocalFunctions;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Technique;
import dev.vitq.converter.DemoModel;
import dev.vitq.converter.Sha256;
import dev.vitq.models.onnx.OnnxWriter;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;

/**
 * A model read from disk and checked, its canonical form (local functions inlined, half precision widened,
 * exporter noise removed: the graph calibration and quantization work on) and what recognition found in it.
 *
 * @param path where it was read from
 * @param original the model as read
 * @param model its canonical form
 * @param recognition its ViT structure, or why it has none
 */
public record LoadedModel(Path path, Model original, Model model, Recognition recognition) {
  /** The ViT structure, or null when the model is not a ViT vitq recognises. */
  public VitStructure vit() {
    return recognition.vit();
  }

  /**
   * Reads, checks, canonicalises and recognises a model; shapes are folded for the image size the flags or the
   * model's metadata give (else its input's, else the one its position embedding implies).
   *
   * @throws VitqException if the file is not a well-formed ONNX model
   */
  public static LoadedModel load(Path path, PreprocessFlags flags) throws VitqException {
    Objects.requireNonNull(path, "path");
    return canonical(path, ModelFiles.fileName(path), OnnxReader.read(path), flags);
  }

  /**
   * The model a quantize job reads, with the source name and SHA-256 its provenance records.
   *
   * @param loaded the model
   * @param source the file, or {@link DemoModel#NAME}
   * @param sha256 of the file's bytes, or of the demo model's
   */
  record Source(LoadedModel loaded, String source, String sha256) {
    /** Reads {@code path}, or makes the embedded demo ViT from {@code seed} when it is null. */
    static Source of(Path path, long seed, PreprocessFlags flags) throws VitqException {
      if (path == null) {
        Model demo = DemoModel.model(seed);
        return new Source(canonical(null, DemoModel.NAME, demo, flags), DemoModel.NAME,
            Sha256.of(OnnxWriter.toBytes(demo)));
      }
      return new Source(load(path, flags), path.toString(), Sha256.of(path));
    }
  }

  static LoadedModel canonical(Path path, String name, Model original, PreprocessFlags flags)
      throws VitqException {
    int[] size = flags.imageSize(original);
    Model canonical = Canonicalizer.apply(Float32.apply(LocalFunctions.inline(original, name)), size[0], size[1]);
    return new LoadedModel(path, original, canonical, VitRecognizer.recognize(canonical, name));
  }

  /**
   * The deployable model of a plan on {@code weights} (the source's float model, or it with GPTQ's weights) for
   * {@code target}: integer weights, Q/DQ activations, the source's interface, provenance (the plan as fitted to the
   * target, which is what the file computes).
   */
  /**
   * The weight corrections of {@code settings} that hold on {@code target}: without per-axis activations a target
   * gets one range for the image instead of the per-channel pixel grid ({@link Deploy#plan}), whose rounding error the
   * patch bias correction takes out, so it is left out there.
   */
  static Calibrator.Settings correctionsFor(Calibrator.Settings settings, Target target) {
    if (target.perAxisActivations() || !settings.techniques().contains(Technique.PATCH_BIAS_CORRECTION)) {
      return settings;
    }
    Set<Technique> kept = EnumSet.copyOf(settings.techniques());
    kept.remove(Technique.PATCH_BIAS_CORRECTION);
    return new Calibrator.Settings(settings.scheme(), settings.method(), settings.batchSize(), settings.seed(),
        settings.session(), kept);
  }

  Model ship(Model weights, String source, String sha, QuantPlan plan, Target target) throws VitqException {
    QuantPlan fitted = Deploy.plan(weights, plan, target);
    Model lowered = QdqLowering.lower(weights, fitted, QdqLowering.Mode.DEPLOY);
    Model deployed = Deploy.apply(lowered, vit(), vit() == null ? 0 : vit().tokens(), target);
    return Provenance.stamp(Float32.withInterfaceOf(deployed, original()), Provenance.of(source, sha, fitted));
  }
}
