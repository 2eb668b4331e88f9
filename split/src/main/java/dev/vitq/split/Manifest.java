package dev.vitq.split;

import dev.vitq.calibration.Preprocessing;
import dev.vitq.converter.Provenance;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A bundle's {@code manifest.json}: everything a device or a server needs to use the two halves. */
final class Manifest {
  private Manifest() {}

  /**
   * The manifest of a bundle, without its {@code files} section (which {@link Bundle#write} adds): the source and its
   * preprocessing, the plan's settings, the split and its reduction, and how the boundary is coded.
   */
  static Map<String, Object> of(SplitRequest r, Split.Parts parts, Reduction reductionUsed,
      BoundaryBudget.Choice choice) {
    VitStructure vit = r.vit();
    QuantPlan plan = r.plan();
    Preprocessing pre = r.preprocessing();
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("format", Bundle.FORMAT);
    out.put("vitq_version", Provenance.version());
    out.put("source", OrderedMaps.of("model", r.source().toString().replace('\\', '/'), "sha256",
        r.sourceSha256()));
    Map<String, Object> prep = new LinkedHashMap<>();
    prep.put("height", pre.height());
    prep.put("width", pre.width());
    prep.put("scale", pre.scale());
    prep.put("mean", pre.mean());
    prep.put("std", pre.std());
    prep.put("resize", pre.resize());
    prep.put("layout", "NCHW, RGB");
    out.put("preprocessing", prep);
    out.put("labels", r.model().metadata("preprocess").map(Preprocessing::labelsFromMetadata).orElse(List.of()));
    out.put("scheme", plan.scheme().cliName());
    out.put("method", plan.method().cliName());
    out.put("search", plan.search());
    out.put("seed", plan.seed());
    int depth = vit.blocks().size();
    out.put("split", OrderedMaps.of("device_blocks", r.split(), "cloud_blocks", depth - r.split(), "depth",
        depth));
    String kind = reductionUsed.kind();
    Map<String, Object> reduction = new LinkedHashMap<>();
    reduction.put("kind", kind);
    reduction.put("keep_tokens", reductionUsed instanceof Reduction.Attention a ? a.keep() : null);
    reduction.put("fuse", reductionUsed instanceof Reduction.Attention a && a.fuse());
    reduction.put("pool", reductionUsed instanceof Reduction.Pool p ? p.size() : null);
    reduction.put("merge", reductionUsed instanceof Reduction.Merge g ? g.merged() : null);
    reduction.put("tokens_in", vit.tokens());
    reduction.put("tokens_out", parts.tokens());
    String kept = keptTokens(vit.embedding().prefixTokens());
    reduction.put("rule", switch (reductionUsed) {
      case Reduction.Attention a -> kept + "; patch tokens ranked by the class token's attention in "
          + "block " + r.split() + " (summed over heads), the top share kept, in rank order"
          + (a.fuse() ? ", then one token: the dropped patch tokens' mean weighted by that attention" : "");
      case Reduction.Pool p -> kept + "; each " + p.size() + "x" + p.size() + " square of "
          + "neighbouring patch tokens averaged, row-major";
      case Reduction.Merge g -> kept + "; patch tokens alternate between sets A (even) and B (odd); "
          + "the " + g.merged() + " tokens of A most similar (cosine) to a token of B are averaged into it; out: the "
          + "unmerged A tokens, most similar first, then B";
      case Reduction.None n -> "every token, in model order";
    });
    out.put("token_reduction", reduction);
    out.put("cloud_precision", r.floatCloud() ? "fp32" : "same");
    Map<String, Object> boundary = new LinkedHashMap<>();
    boundary.put("wire_format", WireFormat.VERSION);
    boundary.put("tensor", OrderedMaps.of("name", Bundle.TOKENS, "dtype", "uint8", "shape", List.of("batch",
        parts.tokens(), parts.bytesPerToken()), "device_output", true, "cloud_input", true));
    boundary.put("tokens", parts.tokens());
    boundary.put("width", parts.width());
    boundary.put("bytes_per_token", parts.bytesPerToken());
    boundary.put("bytes_per_image", parts.bytesPerImage());
    // What the float model would send at this boundary: every token in float32.
    boundary.put("float32_bytes_per_image", 4L * vit.tokens() * parts.width());
    boundary.put("send", "the device output's bytes for one image, row-major (token, then byte): the cloud feeds "
        + "them as " + Bundle.TOKENS + " [1, " + parts.tokens() + ", " + parts.bytesPerToken() + "] (batch them along "
        + "the first axis); nothing else crosses");
    if (parts.codec() == null) {
      Map<String, Object> levels = new LinkedHashMap<>();
      levels.put("codec", "levels");
      levels.put("components", parts.width());
      levels.put("bits", parts.quantizer().bits());
      levels.put("pack", "one byte per code, per token in channel order");
      levels.put("decode", "x[t, c] = (code[t, c] - zero_point) * scale * channel_factor[c] (cloud.onnx does this)");
      levels.put("scale", QdqLowering.scaleInput(plan.entry(vit.blocks().get(r.split()).input()).orElseThrow())[0]);
      levels.put("zero_point", parts.quantizer().zeroPoints()[0]);
      levels.put("channel_factor", parts.channelFactor());
      boundary.put("coding", levels);
    } else {
      boundary.put("coding", parts.codec().describe());
    }
    if (choice != null) {
      Map<String, Object> chosen = new LinkedHashMap<>();
      chosen.put("max_bytes", r.maxBytes());
      chosen.put("fit_images", choice.fitImages());
      chosen.put("score_images", choice.scoreImages());
      // A classifier's candidates are scored by top-1 agreement, an embedding model's by mean cosine.
      String measure = choice.measure().replace(' ', '_');
      chosen.put(measure, choice.best().score());
      chosen.put("tried", choice.tried().stream().map(c -> OrderedMaps.of("configuration", c.describe(),
          "bytes_per_image", c.bytesPerImage(), measure, c.score())).toList());
      boundary.put("budget", chosen);
    }
    out.put("boundary", boundary);
    List<String> deviceFiles = switch (r.format()) {
      case ONNX -> List.of(Bundle.DEVICE);
      case ORT -> List.of(Bundle.DEVICE_ORT);
      case BOTH -> List.of(Bundle.DEVICE, Bundle.DEVICE_ORT);
    };
    List<String> cloudFiles = switch (r.format()) {
      case ONNX -> List.of(Bundle.CLOUD);
      case ORT -> List.of(Bundle.CLOUD_ORT);
      case BOTH -> List.of(Bundle.CLOUD, Bundle.CLOUD_ORT);
    };
    out.put("device", OrderedMaps.of("files", deviceFiles, "input", vit.input(), "outputs",
        List.of(Bundle.TOKENS)));
    Map<String, Object> cloud = OrderedMaps.of("files", cloudFiles, "inputs", List.of(Bundle.TOKENS), "output",
        vit.output());
    if (!vit.classifier()) {
      // Absent for a classifier (its output is logits), as in every bundle before encoders split.
      cloud.put("output_kind", outputKind(vit));
    }
    out.put("cloud", cloud);
    return out;
  }

  /**
   * What the cloud's output is when it is not logits: {@code embedding} (one pooled vector per image),
   * {@code projection} (a pooled vector projected, as CLIP's) or {@code tokens} (one vector per token crossing).
   */
  static String outputKind(VitStructure vit) {
    if (vit.head().pooling() == VitStructure.Head.Pooling.NONE) {
      return Bundle.OUTPUT_TOKENS;
    }
    return vit.head().kind() == VitStructure.Head.Kind.PROJECTION ? Bundle.OUTPUT_PROJECTION : Bundle.OUTPUT_EMBEDDING;
  }

  /** The tokens every reduction keeps, in the words of the manifest's rule. */
  private static String keptTokens(int prefix) {
    return switch (prefix) {
      case 0 -> "no prefix token";
      case 1 -> "class token kept";
      default -> "the " + prefix + " prefix tokens kept";
    };
  }
}
