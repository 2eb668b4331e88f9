package dev.vitq.models.canon;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Half-precision models (float16 or bfloat16 weights and activations) as float32 models, and back at the interface.
 *
 * <p>Quantization computes in float32 between its integer kernels, and ONNX Runtime's CPU provider lacks float16
 * kernels for much of a ViT, so calibration could not even run the half-precision original. {@link #apply} widens
 * every half-precision weight, constant, cast and declared type to float32; {@link #withInterfaceOf} then gives the
 * finished (quantized) model the original's half-precision inputs and outputs back, through Casts at the edges.
 */
public final class Float32 {
  private Float32() {}

  /** Whether a model holds half-precision values anywhere this pass would widen. */
  public static boolean isHalf(Model model) {
    Graph g = model.graph();
    return g.initializers().stream().anyMatch(t -> half(t.dtype()))
        || g.inputs().stream().anyMatch(v -> v.type() != null && half(v.type().dtype()))
        || g.outputs().stream().anyMatch(v -> v.type() != null && half(v.type().dtype()));
  }

  private static boolean half(DType t) {
    return t == DType.FLOAT16 || t == DType.BFLOAT16;
  }

  /** The model with every half-precision value widened to float32; the model itself when there is none. */
  public static Model apply(Model model) {
    if (!isHalf(model)) {
      return model;
    }
    Graph g = model.graph();
    List<Tensor> inits = g.initializers().stream().map(Float32::widen).toList();
    List<Node> nodes = g.nodes().stream().map(Float32::widen).toList();
    return model.withGraph(g.withInitializers(inits).withNodes(nodes).withInputs(widenValues(g.inputs()))
        .withOutputs(widenValues(g.outputs())).withValueInfo(widenValues(g.valueInfo())));
  }

  private static Tensor widen(Tensor t) {
    return half(t.dtype()) ? Tensor.ofFloats(t.name(), t.dims(), t.floats()) : t;
  }

  private static Node widen(Node n) {
    Node out = n;
    if (n.is("Cast") && half(ShapeMath.dtype(n.intAttr("to", 0)))) {
      out = out.withAttribute(Attribute.of("to", (long) DType.FLOAT.code()));
    }
    for (Attribute a : n.attributes()) {
      if (a instanceof Attribute.TensorAttr t && half(t.value().dtype())) {
        out = out.withAttribute(new Attribute.TensorAttr(t.name(), widen(t.value()), t.extras()));
      }
    }
    return out;
  }

  private static List<Value> widenValues(List<Value> values) {
    return values.stream().map(v -> v.type() != null && half(v.type().dtype())
        ? v.withType(new TensorType(DType.FLOAT, v.type().shape())) : v).toList();
  }

  /**
   * {@code converted} (made from {@link #apply} of {@code original}) with the original's input and output types:
   * each half-precision input is cast to float32 on entry, each half-precision output cast back on exit.
   */
  public static Model withInterfaceOf(Model converted, Model original) {
    Map<String, DType> originalTypes = new HashMap<>();
    original.graph().inputs().forEach(v -> originalTypes.put(v.name(), v.type() == null ? null : v.type().dtype()));
    original.graph().outputs().forEach(v -> originalTypes.put(v.name(), v.type() == null ? null : v.type().dtype()));
    Graph g = converted.graph();
    GraphBuilder b = GraphBuilder.around(g);
    Map<String, String> renamed = new HashMap<>();
    List<Node> entry = new ArrayList<>();
    List<Value> inputs = new ArrayList<>();
    for (Value v : g.inputs()) {
      DType t = originalTypes.get(v.name());
      if (t == null || !half(t) || g.initializer(v.name()).isPresent()) {
        inputs.add(v);
        continue;
      }
      String wide = b.fresh(v.name() + "_float32");
      renamed.put(v.name(), wide);
      entry.add(Node.of(b.fresh(v.name() + "_to_float32"), "Cast", List.of(v.name()), List.of(wide),
          Attribute.of("to", (long) DType.FLOAT.code())));
      inputs.add(v.withType(new TensorType(t, v.type().shape())));
    }
    List<Node> exit = new ArrayList<>();
    List<Value> outputs = new ArrayList<>();
    for (Value v : g.outputs()) {
      DType t = originalTypes.get(v.name());
      if (t == null || !half(t)) {
        outputs.add(v);
        continue;
      }
      String wide = b.fresh(v.name() + "_float32");
      renamed.put(v.name(), wide);
      exit.add(Node.of(b.fresh(v.name() + "_to_half"), "Cast", List.of(wide), List.of(v.name()),
          Attribute.of("to", (long) t.code())));
      outputs.add(v.withType(new TensorType(t, v.type() == null ? null : v.type().shape())));
    }
    if (renamed.isEmpty()) {
      return converted;
    }
    List<Node> nodes = new ArrayList<>(entry);
    for (Node n : g.nodes()) {
      List<String> in = n.inputs().stream().map(x -> renamed.getOrDefault(x, x)).toList();
      List<String> out = n.outputs().stream().map(x -> renamed.getOrDefault(x, x)).toList();
      nodes.add(n.withInputs(in).withOutputs(out));
    }
    nodes.addAll(exit);
    List<Value> info = g.valueInfo().stream().map(v -> renamed.containsKey(v.name())
        ? v.withName(renamed.get(v.name())) : v).toList();
    return converted.withGraph(g.withNodes(nodes).withInputs(inputs).withOutputs(outputs).withValueInfo(info));
  }
}
