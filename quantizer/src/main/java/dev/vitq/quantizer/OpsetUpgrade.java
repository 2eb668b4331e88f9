package dev.vitq.quantizer;

import dev.vitq.models.Attribute;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Raises a model's default-domain opset from 13 or later, rewriting the operators whose signature changed on the
 * way: the Reduce operators take their axes as an input from opset 18. Needed when a plan stores int4 weights, which
 * take opset 21.
 */
final class OpsetUpgrade {
  private static final Set<String> REDUCE = Set.of("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare");

  private OpsetUpgrade() {}

  static Model to(Model model, long target) throws VitqException {
    long from = model.opset("");
    if (from >= target) {
      return model;
    }
    if (from < 13) {
      throw new VitqException("Storing int4 weights needs opset " + target + ", and vitq upgrades models from opset 13"
          + " or later, not " + from + "; quantize with 8-bit weights instead.");
    }
    Graph g = model.graph();
    GraphBuilder b = GraphBuilder.around(g);
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      boolean defaultDomain = n.domain().isEmpty() || n.domain().equals("ai.onnx");
      if (defaultDomain && REDUCE.contains(n.opType()) && from < 18 && n.intsAttr("axes").isPresent()) {
        int start = b.nodes().size();
        String axes = b.longs(n.intsAttr("axes").get().stream().mapToLong(Long::longValue).toArray());
        nodes.addAll(b.nodes().subList(start, b.nodes().size()));
        List<Attribute> attrs = new ArrayList<>(n.attributes());
        attrs.removeIf(a -> a.name().equals("axes"));
        List<String> in = new ArrayList<>(n.inputs());
        in.add(axes);
        nodes.add(new Node(n.name(), n.opType(), n.domain(), in, n.outputs(), attrs, n.extras()));
      } else {
        nodes.add(n);
      }
    }
    long ir = Math.max(model.irVersion(), 10);
    return model.withGraph(g.withNodes(nodes)).withOpset("", target).withIrVersion(ir);
  }
}
