package dev.vitq.models.vit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.RealExports;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.vit.VitStructure.Activation;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Head;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Encoders written by the libraries people use (timm, transformers 5, open_clip) through both of torch 2.13's
 * exporters are recognised with their depth, width, heads, prefix tokens, pooling and output kind.
 */
class LibraryExportsTest {
  static final List<String> LIBRARY = RealExports.LIBRARY;

  @ParameterizedTest
  @FieldSource("LIBRARY")
  void everyLibraryExportIsRecognisedByItsRoles(String name) throws Exception {
    String family = name.substring("lib/".length()).replaceAll("_(dynamo|ts)(_dyn)?$", "");
    Recognition r = VitRecognizer.recognize(Canonicalizer.apply(OnnxReader.read(RealExports.model(name), null,
        name + ".onnx"), 0, 0), name + ".onnx");
    assertTrue(r.recognised(), r.reason());
    VitStructure vit = r.vit();
    assertEquals(2, vit.blocks().size());
    assertEquals(32, vit.embedDim());
    assertEquals(2, vit.heads());
    assertEquals(32, vit.imageSize());
    assertEquals(8, vit.patchSize());

    int prefix = family.contains("reg4") ? 5 : family.contains("deit") && !family.contains("deit3") ? 2
        : family.contains("siglip") ? 0 : 1;
    assertEquals(prefix, vit.embedding().prefixTokens(), "prefix tokens");
    assertEquals(16 + prefix, vit.tokens());

    Head.Pooling pooling = family.contains("siglip") ? Head.Pooling.ATTENTION
        : family.contains("eva02") ? Head.Pooling.MEAN : Head.Pooling.CLASS_TOKEN;
    assertEquals(pooling, vit.head().pooling());
    // CLIP's projections have no bias (Hugging Face's visual_projection, open_clip's proj); timm's CLIP head has one.
    Head.Kind kind = family.equals("hf_clip") || family.equals("openclip_vit") ? Head.Kind.PROJECTION
        : family.contains("dinov2") || family.contains("siglip") || family.contains("eva02") ? Head.Kind.EMBEDDING
        : Head.Kind.CLASSIFIER;
    assertEquals(kind, vit.head().kind());
    assertEquals(family.contains("siglip"), !vit.head().poolLinears().isEmpty(), "attention pool layers");

    boolean eva = family.contains("eva02");
    boolean layerScale = family.contains("dinov2") || family.contains("deit3");
    for (Block b : vit.blocks()) {
      assertEquals(eva, b.attention().rotary(), "rotary");
      assertEquals(eva, b.mlp().gated(), "gated MLP");
      if (eva) {
        assertEquals(Activation.Kind.SILU, b.mlp().activation().kind());
        assertEquals("swiglu", b.mlp().kindName());
      } else {
        assertTrue(b.mlp().activation().gelu(), b.mlp().activation().kind().toString());
      }
      assertEquals(layerScale, b.attention().layerScale() != null, "LayerScale");
    }
  }
}
