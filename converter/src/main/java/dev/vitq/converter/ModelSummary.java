package dev.vitq.converter;

import dev.vitq.models.DType;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.models.vit.VitStructure.Block;
import dev.vitq.models.vit.VitStructure.Linear;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * What {@code vitq inspect} reports of a model: the graph (versions, inputs and outputs, parameters, operators)
 * always, and the ViT structure recognition found in its canonical form, or the reason it found none.
 *
 * @param file the model's file name
 * @param irVersion the ONNX IR version
 * @param opset the default-domain operator set
 * @param producer the producing tool and version
 * @param inputs graph inputs as {@code name: type}
 * @param outputs graph outputs as {@code name: type}
 * @param params number of weights (floating-point initializer elements)
 * @param nodes nodes in the file
 * @param canonicalNodes nodes left once exporter noise is removed (what quantization works on)
 * @param operators how many nodes of each operator the file has, most frequent first
 * @param recognised whether the model is a ViT vitq recognises
 * @param reason why it is not, or null
 * @param vit the recognised structure, or null
 */
public record ModelSummary(
    String file,
    long irVersion,
    long opset,
    String producer,
    Map<String, String> inputs,
    Map<String, String> outputs,
    long params,
    int nodes,
    int canonicalNodes,
    Map<String, Integer> operators,
    boolean recognised,
    String reason,
    Vit vit) {

  /**
   * A recognised ViT's structure, each block's parts named by their nodes.
   *
   * @param depth blocks
   * @param embedDim token width
   * @param heads attention heads
   * @param tokens tokens per image
   * @param prefixTokens class, distillation and register tokens before the patches
   * @param imageSize input side
   * @param patchSize patch side
   * @param classes head outputs
   * @param spelling how norms, GELU, q/k/v, linears, pooling, LayerScale and the pre-norm are written
   * @param embedding the embedding's parts
   * @param blocks each block's parts, by node name
   * @param head the head's parts
   */
  public record Vit(int depth, int embedDim, int heads, int tokens, int prefixTokens, int imageSize, int patchSize,
      int classes, Map<String, String> spelling, Map<String, String> embedding, List<Map<String, Object>> blocks,
      Map<String, Object> head) {}

  /** Summarises a model read from a file, its canonical form and what recognition found there. */
  public static ModelSummary of(String file, Model original, Model canonical, Recognition recognition) {
    long params = 0;
    for (Tensor t : original.graph().initializers()) {
      if (t.dtype() == DType.FLOAT || t.dtype() == DType.FLOAT16 || t.dtype() == DType.BFLOAT16
          || t.dtype() == DType.DOUBLE) {
        params += t.elementCount();
      }
    }
    Map<String, Integer> counts = new TreeMap<>();
    for (Node n : original.graph().nodes()) {
      counts.merge(n.domain().isEmpty() ? n.opType() : n.domain() + "." + n.opType(), 1, Integer::sum);
    }
    Map<String, Integer> operators = new LinkedHashMap<>();
    counts.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue(Comparator.reverseOrder())
        .thenComparing(Map.Entry.comparingByKey())).forEach(e -> operators.put(e.getKey(), e.getValue()));
    return new ModelSummary(file, original.irVersion(), original.opset(""),
        (original.producerName() + " " + original.producerVersion()).trim(), types(original.graph().inputs()),
        types(original.graph().outputs()), params, original.graph().nodes().size(), canonical.graph().nodes().size(),
        operators, recognition.recognised(), recognition.reason(),
        recognition.recognised() ? vit(canonical, recognition.vit()) : null);
  }

  private static Vit vit(Model model, VitStructure vit) {
    GraphIndex idx = GraphIndex.of(model.graph());
    Block first = vit.blocks().get(0);
    Map<String, String> spelling = new LinkedHashMap<>();
    spelling.put("norm", first.norm1().kind().name().toLowerCase(Locale.ROOT));
    spelling.put("mlp", first.mlp().kindName());
    spelling.put("activation", first.mlp().activation().kind().name().toLowerCase(Locale.ROOT));
    spelling.put("qkv", first.attention().fused() ? "fused" : "separate");
    spelling.put("linear", idx.producer(first.mlp().fc1().matmul()).map(Node::opType).orElse("?"));
    spelling.put("pooling", vit.head().pooling().name().toLowerCase(Locale.ROOT).replace('_', '-')
        + (vit.head().linears().size() > 1 ? " (" + vit.head().linears().size() + " classifiers averaged)" : ""));
    spelling.put("output", vit.head().kind().name().toLowerCase(Locale.ROOT));
    spelling.put("final_norm", vit.finalNorm() == null ? "none" : vit.normAfterPooling() ? "after pooling"
        : "before pooling");
    spelling.put("layer_scale", first.attention().layerScale() != null ? "yes" : "no");
    spelling.put("pre_norm", vit.embedding().preNorm() != null ? "yes" : "no");

    Map<String, String> embedding = new LinkedHashMap<>();
    embedding.put("conv", name(idx, vit.embedding().conv()));
    embedding.put("class_token", vit.embedding().classToken());
    embedding.put("position_embedding", vit.embedding().positionEmbedding());
    embedding.put("pre_norm", vit.embedding().preNorm() == null ? null : name(idx, vit.embedding().preNorm().output()));
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
      if (b.mlp().gate() != null) {
        parts.put("gate", name(idx, b.mlp().gate().matmul()));
      }
      parts.put("activation", name(idx, b.mlp().activation().output()));
      parts.put("fc2", name(idx, b.mlp().fc2().matmul()));
      parts.put("residual2", name(idx, b.residual2()));
      parts.put("roles", b.roles());
      blocks.add(parts);
    }
    Map<String, Object> head = new LinkedHashMap<>();
    head.put("norm", vit.finalNorm() == null ? null : name(idx, vit.finalNorm().output()));
    head.put("pool_linears", vit.head().poolLinears().stream().map(l -> name(idx, l.matmul())).toList());
    head.put("linears", vit.head().linears().stream().map(l -> name(idx, l.matmul())).toList());
    head.put("output", vit.output());
    return new Vit(vit.blocks().size(), vit.embedDim(), vit.heads(), vit.tokens(), vit.embedding().prefixTokens(),
        vit.imageSize(), vit.patchSize(), vit.classes(), spelling, embedding, blocks, head);
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
