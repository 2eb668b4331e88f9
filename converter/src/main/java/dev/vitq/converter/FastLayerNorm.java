package dev.vitq.converter;

import dev.vitq.models.Attribute;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.vit.VitStructure.Norm;
import dev.vitq.models.vit.VitStructure;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A deploy-time graph pass: each LayerNormalization over the token sequence becomes ONNX Runtime's
 * SkipLayerNormalization with a zero skip. Same arithmetic, but ONNX Runtime's CPU kernel for the latter is
 * vectorised: four times faster on [32, 65, 192] (measured with ONNX Runtime 1.29, 2 cores), and layer norms are the
 * largest float cost left in a quantized ViT.
 */
final class FastLayerNorm {
  private FastLayerNorm() {}

  /** The pass on a graph whose norms see {@code tokens} tokens (fewer in a split's cloud half). */
  static Model apply(Model model, VitStructure vit, long tokens) {
    Set<String> targets = new HashSet<>();
    List<Norm> norms = new ArrayList<>();
    vit.blocks().forEach(b -> {
      norms.add(b.norm1());
      norms.add(b.norm2());
    });
    // The final norm reads the whole sequence unless the head pools before normalising.
    if (vit.finalNorm() != null && !vit.normAfterPooling()) {
      norms.add(vit.finalNorm());
    }
    if (vit.embedding().preNorm() != null) {
      norms.add(vit.embedding().preNorm());
    }
    for (Norm n : norms) {
      if (n.kind() == Norm.Kind.OPERATOR) {
        targets.add(n.output());
      }
    }
    Graph g = model.graph();
    GraphBuilder b = GraphBuilder.around(g);
    String zeros = null;
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      if (n.outputs().isEmpty() || !targets.contains(n.output()) || !n.is("LayerNormalization") || n.inputs().size() < 3
          || n.outputs().size() != 1 || n.input(1).isEmpty() || n.input(2).isEmpty()
          || !(n.intAttr("axis", -1) == -1 || n.intAttr("axis", -1) == 2)) {
        nodes.add(n);
        continue;
      }
      if (zeros == null) {
        // Made at load time by ONNX Runtime's constant folding, so the file does not carry a block of zeros.
        String shape = b.initializer("vitq_skip_shape", Tensor.ofLongs("", List.of(2L),
            new long[] {tokens, vit.embedDim()}));
        zeros = b.op("ConstantOfShape", List.of(shape));
        nodes.addAll(0, b.nodes());
      }
      nodes.add(new Node(n.name(), "SkipLayerNormalization", MsDomain.NAME,
          List.of(n.input(0), zeros, n.input(1), n.input(2)), n.outputs(),
          List.of(Attribute.of("epsilon", n.floatAttr("epsilon", 1e-5f))), n.extras()));
    }
    if (zeros == null) {
      return model;
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(b.initializers());
    return MsDomain.imported(model.withGraph(g.withNodes(nodes).withInitializers(inits)));
  }
}
