package dev.vitq.models.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import dev.vitq.models.Model;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Models whose layers are local functions, as torch.onnx.dynamo_export writes them, inline into plain graphs. */
class LocalFunctionsTest {
  private static final String DOMAIN = "pkg.torch.2.3.0";
  /** A function per module, named after its class and path as dynamo_export names them. */
  private static final String MODULE = "torch_nn_modules_activation_GELU_blocks_mlp_act_1";

  /** {@code y = x * 0.5 * (1 + erf(x / sqrt 2))}, its 0.5 taken from the caller's attribute {@code half}. */
  private static FunctionProto gelu() {
    return FunctionProto.newBuilder().setName(MODULE).setDomain(DOMAIN).addInput("x").addOutput("y")
        .addAttribute("half")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
        .addNode(NodeProto.newBuilder().setOpType("Constant").addOutput("half").addAttribute(AttributeProto
            .newBuilder().setName("value_float").setType(AttributeProto.AttributeType.FLOAT).setRefAttrName("half")))
        .addNode(NodeProto.newBuilder().setOpType("Constant").addOutput("root2").addAttribute(AttributeProto
            .newBuilder().setName("value_float").setType(AttributeProto.AttributeType.FLOAT)
            .setF((float) Math.sqrt(2))))
        .addNode(NodeProto.newBuilder().setOpType("Constant").addOutput("one").addAttribute(AttributeProto
            .newBuilder().setName("value_float").setType(AttributeProto.AttributeType.FLOAT).setF(1f)))
        .addNode(NodeProto.newBuilder().setOpType("Div").addInput("x").addInput("root2").addOutput("d"))
        .addNode(NodeProto.newBuilder().setOpType("Erf").addInput("d").addOutput("e"))
        .addNode(NodeProto.newBuilder().setOpType("Add").addInput("e").addInput("one").addOutput("f"))
        .addNode(NodeProto.newBuilder().setOpType("Mul").addInput("x").addInput("f").addOutput("g"))
        .addNode(NodeProto.newBuilder().setOpType("Mul").addInput("g").addInput("half").addOutput("y"))
        .build();
  }

  /** The built ViT with every GELU replaced by a call of the local function. */
  private static byte[] withFunctions(Model vit) throws Exception {
    VitStructure s = VitRecognizer.recognize(vit, "vit").require();
    Set<String> geluValues = new HashSet<>();
    s.blocks().forEach(b -> geluValues.addAll(b.mlp().activation().nodes()));
    ModelProto.Builder m = OnnxWriter.toProto(vit).toBuilder();
    m.getGraphBuilder().clearNode();
    for (NodeProto n : OnnxWriter.toProto(vit).getGraph().getNodeList()) {
      if (!geluValues.contains(n.getOutput(0))) {
        m.getGraphBuilder().addNode(n);
      }
    }
    for (var b : s.blocks()) {
      m.getGraphBuilder().addNode(NodeProto.newBuilder().setName("gelu_" + b.index()).setOpType(MODULE)
          .setDomain(DOMAIN).addInput(b.mlp().activation().input()).addOutput(b.mlp().activation().output())
          .addAttribute(AttributeProto.newBuilder().setName("half").setType(AttributeProto.AttributeType.FLOAT)
              .setF(0.5f)));
    }
    m.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(DOMAIN).setVersion(1));
    m.addFunctions(gelu());
    return m.build().toByteArray();
  }

  @Test
  void callsBecomeTheirBodiesAndComputeWhatOnnxRuntimeComputes() throws Exception {
    Model vit = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), Spelling.TIMM_17, 3);
    byte[] bytes = withFunctions(vit);
    Model read = OnnxReader.read(bytes, null, "functions.onnx");
    Recognition hidden = VitRecognizer.recognize(Canonicalizer.apply(read, 0, 0), "functions.onnx");
    assertFalse(hidden.recognised());
    assertTrue(hidden.reason().contains("has no activation (GELU, SiLU or ReLU, gated or not) after fc1"), hidden.reason());

    Model inlined = LocalFunctions.inline(read, "functions.onnx");

    assertTrue(inlined.graph().nodes().stream().noneMatch(n -> n.domain().equals(DOMAIN)));
    assertEquals(0, ModelProto.parseFrom(inlined.extras().toByteArray()).getFunctionsCount());
    Recognition r = VitRecognizer.recognize(Canonicalizer.apply(inlined, 0, 0), "functions.onnx");
    assertTrue(r.recognised(), r.reason());
    float[] x = OrtRunner.randomImages(2, 32, 9);
    long[] shape = {2, 3, 32, 32};
    float[] expected = OrtRunner.run(bytes, "pixel_values", x, shape);
    assertTrue(OrtRunner.maxAbsDiff(expected, OrtRunner.run(OnnxWriter.toBytes(inlined), "pixel_values", x, shape))
        <= 1e-6);
    assertTrue(OrtRunner.maxAbsDiff(expected, OrtRunner.run(OnnxWriter.toBytes(vit), "pixel_values", x, shape))
        <= 1e-5, "the function computes the GELU it replaced");
  }

  @Test
  void aModelWithoutFunctionsIsLeftAsItIs() throws Exception {
    Model vit = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), Spelling.HF_13, 3);
    assertTrue(LocalFunctions.inline(vit, "plain.onnx") == vit);
  }
}
