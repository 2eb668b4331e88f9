package dev.vitq.models.vit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.RealExports;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.canon.Float32;
import dev.vitq.models.onnx.LocalFunctions;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitStructure.Activation;
import dev.vitq.models.vit.VitStructure.Head;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/** What PyTorch's exporter really writes for torchvision, Hugging Face, Optimum, timm and CLIP models. */
class RealExportsTest {
  static final java.util.List<String> VITS = RealExports.ALL.stream().filter(n -> !n.equals(RealExports.SWIN))
      .toList();

  private static Model read(String name) throws Exception {
    return OnnxReader.read(RealExports.model(name), null, name + ".onnx");
  }

  private static Model canonical(String name) throws Exception {
    return Canonicalizer.apply(Float32.apply(LocalFunctions.inline(read(name), name)), 0, 0);
  }

  @ParameterizedTest
  @FieldSource("dev.vitq.models.RealExports#ALL")
  void convertGivesTheExportBackByteForByte(String name) throws Exception {
    byte[] bytes = RealExports.model(name);
    assertArrayEquals(bytes, OnnxWriter.toBytes(read(name)));
  }

  /** The canonical graph (what vitq quantizes) computes torch's outputs, for every fixture, Swin included. */
  @ParameterizedTest
  @FieldSource("dev.vitq.models.RealExports#ALL")
  void theCanonicalGraphComputesWhatTorchComputed(String name) throws Exception {
    Model original = read(name);
    Model canonical = canonical(name);
    assertTrue(canonical.graph().nodes().size() < original.graph().nodes().size(), "noise removed");
    float[] x = RealExports.input(name);
    long[] shape = {x.length / (3 * 32 * 32), 3, 32, 32};
    float[] torch = RealExports.output(name);
    float[] ours = OrtRunner.run(OnnxWriter.toBytes(canonical), canonical.graph().inputs().get(0).name(), x, shape);
    // The first output (logits, or CLIP's image embeddings) leads the concatenated reference.
    float[] expected = Arrays.copyOf(torch, ours.length);
    boolean half = name.contains("fp16");
    assertTrue(OrtRunner.maxAbsDiff(expected, ours) <= (half ? 5e-3 : 1e-4),
        name + ": " + OrtRunner.maxAbsDiff(expected, ours));
    if (!half) {
      float[] exported = OrtRunner.run(OnnxWriter.toBytes(original), original.graph().inputs().get(0).name(), x,
          shape);
      assertTrue(OrtRunner.maxAbsDiff(exported, ours) <= 1e-5, name + ": same as the export itself");
    }
  }

  @ParameterizedTest
  @FieldSource("VITS")
  void everyViTExportIsRecognised(String name) throws Exception {
    Recognition r = VitRecognizer.recognize(canonical(name), name + ".onnx");
    assertTrue(r.recognised(), r.reason());
    VitStructure vit = r.vit();
    boolean distilled = name.contains("distilled");
    boolean clip = name.startsWith("clip");
    int prefix = name.contains("registers") ? 5 : distilled ? 2 : 1;
    assertEquals(2, vit.blocks().size());
    assertEquals(32, vit.embedDim());
    assertEquals(2, vit.heads());
    assertEquals(32, vit.imageSize());
    assertEquals(8, vit.patchSize());
    assertEquals(prefix, vit.embedding().prefixTokens(), "prefix tokens");
    assertEquals(16 + prefix, vit.tokens());
    // CLIP's visual projection has no bias: a projection to the embedding, not a classifier.
    assertEquals(clip ? 0 : 10, vit.classes());
    assertEquals(clip ? Head.Kind.PROJECTION : Head.Kind.CLASSIFIER, vit.head().kind());
    assertEquals(clip ? 16 : 10, vit.head().linears().get(0).outFeatures());
    assertEquals(distilled ? 2 : 1, vit.head().linears().size());
    boolean mean = name.contains("meanpool");
    assertEquals(mean ? Head.Pooling.MEAN : Head.Pooling.CLASS_TOKEN, vit.head().pooling());
    assertEquals(mean || clip, vit.normAfterPooling());
    assertEquals(clip, vit.embedding().preNorm() != null);
    for (VitStructure.Block b : vit.blocks()) {
      assertEquals(clip ? Activation.Kind.SIGMOID : Activation.Kind.ERF, b.mlp().activation().kind());
      boolean fused = name.startsWith("tv_") || name.startsWith("timm");
      assertEquals(fused, b.attention().fused(), "fused q/k/v");
      int opset = Integer.parseInt(name.replaceAll(".*_op(\\d+).*", "$1"));
      assertEquals(opset >= 17 ? Norm.Kind.OPERATOR : Norm.Kind.DECOMPOSED, b.norm1().kind());
      assertEquals(name.contains("layerscale"), b.attention().layerScale() != null);
      assertEquals(name.contains("layerscale"), b.mlp().layerScale() != null);
    }
  }

  @Test
  void swinIsNotAViTButItsReasonIsOneSentence() throws Exception {
    Recognition r = VitRecognizer.recognize(canonical(RealExports.SWIN), RealExports.SWIN + ".onnx");
    assertFalse(r.recognised());
    assertNull(r.vit());
    assertTrue(r.reason().startsWith("tv_swin_op14.onnx is not a transformer encoder vitq recognises: "), r.reason());
    assertFalse(r.reason().contains("\n"));
  }

  @Test
  void halfPrecisionExportsAreReadAndWidenedForQuantization() throws Exception {
    Model half = read("timm_vit_fp16_op17");
    assertEquals(DType.FLOAT16, half.graph().inputs().get(0).type().dtype());
    Model wide = canonical("timm_vit_fp16_op17");
    assertEquals(DType.FLOAT, wide.graph().inputs().get(0).type().dtype());
    assertNotNull(VitRecognizer.recognize(wide, "fp16").vit());
  }
}
