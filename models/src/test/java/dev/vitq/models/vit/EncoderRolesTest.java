package dev.vitq.models.vit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.builder.EncoderFeatures;
import dev.vitq.models.builder.EncoderFeatures.Mlp;
import dev.vitq.models.builder.EncoderFeatures.Output;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitStructure.Activation;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Head;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Encoders that are not ViT classifiers are recognised by the roles of their parts. */
class EncoderRolesTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 48, 3, 4, 96, 5);

  private static VitStructure recognise(Spelling spelling, EncoderFeatures features) throws Exception {
    Model model = VitBuilder.build(CONFIG, spelling, features, 4);
    // The builder writes models ONNX Runtime runs; the recognition reads the canonical graph.
    assertTrue(OnnxWriter.toBytes(model).length > 0);
    return VitRecognizer.recognize(Canonicalizer.apply(model, 0, 0), "encoder.onnx").require();
  }

  private static void sizes(VitStructure vit, int prefix) {
    assertEquals(3, vit.blocks().size());
    assertEquals(48, vit.embedDim());
    assertEquals(4, vit.heads());
    assertEquals(prefix, vit.embedding().prefixTokens());
    assertEquals(16 + prefix, vit.tokens());
    assertEquals(32, vit.imageSize());
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "HF_13", "DYNAMO_20", "TORCH_EXPORT_18"})
  void aHeadlessEncoderWithRegistersAndLayerScaleIsAnEmbeddingModel(Spelling spelling) throws Exception {
    VitStructure vit = recognise(spelling, new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4));
    sizes(vit, 5);
    assertEquals(Head.Pooling.CLASS_TOKEN, vit.head().pooling());
    assertEquals(Head.Kind.EMBEDDING, vit.head().kind());
    assertTrue(vit.head().linears().isEmpty());
    assertFalse(vit.classifier());
    assertEquals(0, vit.classes());
    assertEquals(VitBuilder.EMBEDDING, vit.output());
    assertNotNull(vit.finalNorm());
    for (Block b : vit.blocks()) {
      assertNotNull(b.attention().layerScale());
      assertNotNull(b.mlp().layerScale());
      assertTrue(b.roles().get(1).contains("layer-scale"), b.roles().toString());
    }
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "TANH_18"})
  void anEncoderOutputtingItsTokensHasNoPooling(Spelling spelling) throws Exception {
    VitStructure vit = recognise(spelling, new EncoderFeatures(Output.TOKENS, Mlp.GELU, false, false, 0));
    sizes(vit, 1);
    assertEquals(Head.Pooling.NONE, vit.head().pooling());
    assertEquals(Head.Kind.EMBEDDING, vit.head().kind());
    assertNotNull(vit.finalNorm());
    assertFalse(vit.normAfterPooling());
    int perBlock = spelling == Spelling.TIMM_17 ? 4 : 6;
    assertEquals(3 * perBlock, vit.linears().size(), "q/k/v (fused or not), proj, fc1, fc2 per block, nothing after");
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "HF_13", "DYNAMO_20"})
  void swigluAndRotaryEmbeddingAreRolesOfTheBlock(Spelling spelling) throws Exception {
    VitStructure vit = recognise(spelling, new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0));
    sizes(vit, 1);
    for (Block b : vit.blocks()) {
      assertTrue(b.attention().rotary(), "rotary");
      assertFalse(b.attention().qkNorm());
      assertTrue(b.mlp().gated());
      assertNotNull(b.mlp().gate());
      assertEquals(Activation.Kind.SILU, b.mlp().activation().kind());
      assertEquals("swiglu", b.mlp().kindName());
      assertEquals(b.mlp().gate().output(), b.mlp().activation().input());
      assertNull(b.mlp().norm());
      assertEquals(List.of(b.mlp().gate(), b.mlp().fc1(), b.mlp().fc2()), b.mlp().linears());
      assertTrue(b.roles().get(1).contains("rotary"), b.roles().toString());
    }
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "HF_13", "DYNAMO_20"})
  void anAttentionPoolHeadIsFoundWithItsLayers(Spelling spelling) throws Exception {
    VitStructure vit = recognise(spelling, new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false, false, 0));
    sizes(vit, 1);
    assertEquals(Head.Pooling.ATTENTION, vit.head().pooling());
    assertEquals(Head.Kind.EMBEDDING, vit.head().kind());
    assertEquals(VitBuilder.EMBEDDING, vit.output());
    GraphIndex idx = GraphIndex.of(Canonicalizer.apply(VitBuilder.build(CONFIG, spelling,
        new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false, false, 0), 4), 0, 0).graph());
    // The learned query's projection reads constants only and is folded: keys/values, proj, fc1 and fc2 remain.
    List<String> weights = vit.head().poolLinears().stream().map(VitStructure.Linear::weight).toList();
    assertEquals(4, weights.size(), weights.toString());
    assertTrue(weights.get(0).contains("attn_pool.kv"), weights.toString());
    assertTrue(weights.get(3).contains("attn_pool.mlp.fc2"), weights.toString());
    for (VitStructure.Linear l : vit.head().poolLinears()) {
      assertTrue(idx.producer(l.matmul()).map(Node::opType).orElse("").matches("MatMul|Gemm"));
    }
  }

  @ParameterizedTest
  @EnumSource(value = Output.class)
  void aClassifierIsTheOnlyOutputWithClasses(Output output) throws Exception {
    VitStructure vit = recognise(Spelling.TIMM_17, new EncoderFeatures(output, Mlp.GELU, false, false, 0));
    assertEquals(output == Output.CLASSIFIER, vit.classifier());
    assertEquals(output == Output.CLASSIFIER ? 5 : 0, vit.classes());
  }
}
