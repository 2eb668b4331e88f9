package dev.vitq.models.vit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.SharedData;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Activation;
import dev.vitq.models.vit.VitStructure.Head;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class VitRecognizerTest {
  private static final VitConfig CONFIG = new VitConfig(48, 8, 3, 96, 5, 6, 256, 7);

  private static String op(GraphIndex idx, String value) {
    return idx.producer(value).map(Node::opType).orElse("<none>");
  }

  @ParameterizedTest
  @EnumSource(Spelling.class)
  void recognisesEverySpelling(Spelling spelling) throws Exception {
    Model model = VitBuilder.build(CONFIG, spelling, 1);
    Model canonical = Canonicalizer.apply(model, 0, 0);
    VitStructure vit = VitRecognizer.recognize(canonical, spelling.cliName()).require();
    GraphIndex idx = GraphIndex.of(canonical.graph());

    assertEquals(5, vit.blocks().size());
    assertEquals(96, vit.embedDim());
    assertEquals(6, vit.heads());
    assertEquals(37, vit.tokens());
    assertEquals(48, vit.imageSize());
    assertEquals(8, vit.patchSize());
    assertEquals(7, vit.classes());
    assertEquals("cls_token", vit.embedding().classToken());
    assertEquals("pos_embed", vit.embedding().positionEmbedding());
    assertEquals("logits", vit.output());

    Norm.Kind norm = spelling == Spelling.TIMM_17 || spelling == Spelling.DYNAMO_20
        || spelling == Spelling.TORCH_EXPORT_18 ? Norm.Kind.OPERATOR : Norm.Kind.DECOMPOSED;
    Activation.Kind gelu = switch (spelling) {
      case DYNAMO_20 -> Activation.Kind.OPERATOR;
      case TANH_18 -> Activation.Kind.TANH;
      default -> Activation.Kind.ERF;
    };
    boolean fused = spelling == Spelling.TIMM_17 || spelling == Spelling.DYNAMO_20;
    for (Block b : vit.blocks()) {
      assertEquals(norm, b.norm1().kind());
      assertEquals(norm, b.norm2().kind());
      assertEquals(1e-6f, b.norm1().epsilon());
      assertEquals(gelu, b.mlp().activation().kind());
      assertEquals(fused, b.attention().fused());
      assertEquals("Softmax", op(idx, b.attention().softmax()));
      assertEquals("MatMul", op(idx, b.attention().scores()));
      assertEquals("MatMul", op(idx, b.attention().context()));
      assertEquals("Add", op(idx, b.residual1()));
      assertEquals("Add", op(idx, b.residual2()));
      assertEquals(b.mlp().activation().output(), b.mlp().fc2().input());
      assertEquals(b.norm2().output(), b.mlp().fc1().input());
      assertEquals(256, b.mlp().fc1().outFeatures());
      assertEquals(fused ? 288 : 96, b.attention().projections().get(0).outFeatures());
      assertNotNull(b.norm1().scale());
      assertNotNull(b.mlp().fc1().bias());
      if (spelling == Spelling.TORCH_EXPORT_18) {
        // The exporter's Transpose of each [out, in] weight is folded into an [in, out] constant of its own.
        assertTrue(b.attention().projections().get(1).output().contains("/attn/k/"));
      } else if (!fused) {
        assertTrue(b.attention().projections().get(0).weight().endsWith(".attn.q.weight"));
        assertTrue(b.attention().projections().get(1).weight().endsWith(".attn.k.weight"));
        assertTrue(b.attention().projections().get(2).weight().endsWith(".attn.v.weight"));
      }
    }
    for (int i = 1; i < vit.blocks().size(); i++) {
      assertEquals(vit.blocks().get(i - 1).output(), vit.blocks().get(i).input());
    }
    assertEquals(spelling == Spelling.TANH_18 ? Head.Pooling.MEAN : Head.Pooling.CLASS_TOKEN, vit.head().pooling());
    assertEquals(spelling == Spelling.DYNAMO_20, vit.blocks().get(0).mlp().fc1().weightTransposed());
    assertEquals(4 * 5 + 1, vit.linears().size() - (fused ? 0 : 2 * 5));
  }

  @Test
  void recognisesTheSharedModel() throws Exception {
    Model model = OnnxReader.read(SharedData.vitTiny());
    VitStructure vit = VitRecognizer.recognize(Canonicalizer.apply(model, 0, 0), "vit-tiny-cifar10.onnx").require();
    assertEquals(12, vit.blocks().size());
    assertEquals(192, vit.embedDim());
    assertEquals(3, vit.heads());
    assertEquals(65, vit.tokens());
    assertEquals(32, vit.imageSize());
    assertEquals(4, vit.patchSize());
    assertEquals(10, vit.classes());
    Block b = vit.blocks().get(7);
    assertTrue(b.attention().fused());
    assertEquals(Activation.Kind.ERF, b.mlp().activation().kind());
    assertEquals(5, b.mlp().activation().nodes().size());
    assertEquals("/blocks/blocks.7/attn/Softmax_output_0", b.attention().softmax());
    assertEquals("head.weight", vit.head().linears().get(0).weight());
    assertTrue(vit.head().linears().get(0).weightTransposed());
  }

  @Test
  void aGraphWithoutAttentionIsNotAViT() throws Exception {
    Model model = VitBuilder.build(CONFIG, Spelling.TIMM_17, 1);
    GraphIndex idx = GraphIndex.of(model.graph());
    // Replace every Softmax by Identity: the blocks lose their attention.
    List<Node> nodes = model.graph().nodes().stream()
        .map(n -> n.is("Softmax") ? new Node(n.name(), "Identity", "", n.inputs(), n.outputs(), List.of(), n.extras())
            : n)
        .toList();
    Model broken = model.withGraph(model.graph().withNodes(nodes));
    assertEquals("x.onnx is not a transformer encoder vitq recognises: block 0 has 0 softmax nodes in its attention, not 1.",
        VitRecognizer.recognize(broken, "x.onnx").reason());
    assertNull(idx.producer("nothing").orElse(null));
  }

  @Test
  void aGraphWithoutPatchEmbeddingIsNotAViT() throws Exception {
    Model model = VitBuilder.build(CONFIG, Spelling.HF_13, 1);
    List<Node> nodes = model.graph().nodes().stream()
        .map(n -> n.is("Conv") ? new Node(n.name(), "ConvTranspose", "", n.inputs(), n.outputs(), n.attributes(),
            n.extras()) : n)
        .toList();
    Model broken = model.withGraph(model.graph().withNodes(nodes));
    String reason = VitRecognizer.recognize(broken, "y.onnx").reason();
    assertTrue(reason.contains("no patch embedding"), reason);
  }
}
