package dev.vitq.converter;

import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Value;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Linear;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code vitq inspect} reports of a model: versions, inputs and outputs, parameter count and the recognised
 * ViT structure, with each block's parts named by their nodes.
 *
 * @param file the model's file name
 * @param irVersion the ONNX IR version
 * @param opset the default-domain operator set
 * @param producer the producing tool and version
 * @param inputs graph inputs as {@code name: type}
 * @param outputs graph outputs as {@code name: type}
 * @param params number of weights (floating-point initializer elements)
 * @param embedDim token width
 * @param heads attention heads
 * @param tokens tokens per image
 * @param imageSize input side
 * @param patchSize patch side
 * @param classes head outputs
 * @param spelling how norms, GELU, q/k/v, linears and pooling are written
 * @param embedding the embedding's parts
 * @param blocks each block's parts, by node name
 * @param head the head's parts
 */
public record ModelSummary(
    String file,
    long irVersion,
    long opset,
    String producer,
    Map<String, String> inputs,
    Map<String, String> outputs,
    long params,
    int embedDim,
    int heads,
    int tokens,
    int imageSize,
    int patchSize,
    int classes,
    Map<String, String> spelling,
    Map<String, String> embedding,
    List<Map<String, Object>> blocks,
    Map<String, String> head) {

  /** Summarises a recognised model. */
  public static ModelSummary of(String file, Model model, VitStructure vit) {
    GraphIndex idx = GraphIndex.of(model.graph());
    long params = 0;
    for (Tensor t : model.graph().initializers()) {
      if (t.dtype() == DType.FLOAT || t.dtype() == DType.FLOAT16 || t.dtype() == DType.BFLOAT16
          || t.dtype() == DType.DOUBLE) {
        params += t.elementCount();
      }
    }
    Block first = vit.blocks().get(0);
    Map<String, String> spelling = new LinkedHashMap<>();
    spelling.put("norm", first.norm1().kind().name().toLowerCase(java.util.Locale.ROOT));
    spelling.put("gelu", first.mlp().gelu().kind().name().toLowerCase(java.util.Locale.ROOT));
    spelling.put("qkv", first.attention().fused() ? "fused" : "separate");
    spelling.put("linear", idx.producer(first.mlp().fc1().matmul()).map(Node::opType).orElse("?"));
    spelling.put("pooling", vit.head().pooling().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'));

    Map<String, String> embedding = new LinkedHashMap<>();
    embedding.put("conv", name(idx, vit.embedding().conv()));
    embedding.put("class_token", vit.embedding().classToken());
    embedding.put("position_embedding", vit.embedding().positionEmbedding());
    embedding.put("output", vit.embedding().output());

    List<Map<String, Object>> blocks = new ArrayList<>();
    for (Block b : vit.blocks()) {
      Map<String, Object> parts = new LinkedHashMap<>();
      parts.put("index", b.index());
      parts.put("norm1", name(idx, b.norm1().output()));
      List<Linear> proj = b.attention().projections();
      if (b.attention().fused()) {
        parts.put("qkv", name(idx, proj.get(0).matmul()));
      } else {
        parts.put("q", name(idx, proj.get(0).matmul()));
        parts.put("k", name(idx, proj.get(1).matmul()));
        parts.put("v", name(idx, proj.get(2).matmul()));
      }
      parts.put("scores", name(idx, b.attention().scores()));
      parts.put("softmax", name(idx, b.attention().softmax()));
      parts.put("context", name(idx, b.attention().context()));
      parts.put("proj", name(idx, b.attention().proj().matmul()));
      parts.put("residual1", name(idx, b.residual1()));
      parts.put("norm2", name(idx, b.norm2().output()));
      parts.put("fc1", name(idx, b.mlp().fc1().matmul()));
      parts.put("gelu", name(idx, b.mlp().gelu().output()));
      parts.put("fc2", name(idx, b.mlp().fc2().matmul()));
      parts.put("residual2", name(idx, b.residual2()));
      blocks.add(parts);
    }
    Map<String, String> head = new LinkedHashMap<>();
    head.put("norm", name(idx, vit.finalNorm().output()));
    head.put("pooled", vit.head().pooled());
    head.put("linear", name(idx, vit.head().linear().matmul()));
    head.put("output", vit.output());

    return new ModelSummary(file, model.irVersion(), model.opset(""),
        (model.producerName() + " " + model.producerVersion()).trim(), types(model.graph().inputs()),
        types(model.graph().outputs()), params, vit.embedDim(), vit.heads(), vit.tokens(), vit.imageSize(),
        vit.patchSize(), vit.classes(), spelling, embedding, blocks, head);
  }

  /** The node's name, or the value's name when the node has none. */
  private static String name(GraphIndex idx, String value) {
    return idx.producer(value).map(Node::name).filter(n -> !n.isEmpty()).orElse(value);
  }

  private static Map<String, String> types(List<Value> values) {
    Map<String, String> out = new LinkedHashMap<>();
    values.forEach(v -> out.put(v.name(), v.type() == null ? "?" : v.type().toString()));
    return out;
  }
}
