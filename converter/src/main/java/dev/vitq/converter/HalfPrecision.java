package dev.vitq.converter;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.vit.VitStructure;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code fp16} scheme, written without calibration: float16 weights and float16 compute for GPU and NPU providers,
 * behind the model's float32 inputs and outputs (one Cast on entry, one on exit), so callers feed and read what they
 * fed the float model.
 *
 * <p>Every float32 initializer, constant and Cast target becomes float16; weights beyond float16's range saturate at
 * +-65504 (an attention mask's "minus infinity" stays a very large negative number, not an infinity that would turn a
 * fully masked row's softmax into NaN). What stays float32:
 *
 * <ul>
 *   <li>The nodes that write {@code float32Outputs}: the callers pass the spelled-out layer and RMS norms of a
 *       recognised ViT, whose square of the centred input overflows float16 once an activation passes 256 (large ViTs have
 *       such outliers). They run on float32 with Casts where they meet float16 values. A LayerNormalization operator
 *       stays float16: its statistics are computed in float32 inside the kernel ({@code stash_type} 1, ONNX's default).
 *   <li>Inputs the ONNX operators define as float32 whatever the data type: Resize's and Upsample's scales.
 * </ul>
 */
public final class HalfPrecision {
  private static final float MAX = 65504f;

  private HalfPrecision() {}

  /**
   * The model in float16.
   *
   * @param model a float32 model (no float16 or bfloat16 values; widen those first)
   * @param float32Outputs outputs of the nodes to compute in float32
   * @param halfEdges graph inputs and outputs to leave as float16 (those the original model had in half precision)
   */
  public static Model apply(Model model, Set<String> float32Outputs, Set<String> halfEdges) {
    Graph g = model.graph();
    GraphBuilder b = GraphBuilder.around(g);
    Set<String> wideConstants = new HashSet<>();
    Set<String> readByHalf = new HashSet<>();
    Set<String> wideOutputs = new HashSet<>();
    for (Node n : g.nodes()) {
      boolean wide = n.outputs().stream().anyMatch(float32Outputs::contains);
      for (int i = 0; i < n.inputs().size(); i++) {
        if (fixedFloat32(n, i) || wide) {
          wideConstants.add(n.input(i));
        } else {
          readByHalf.add(n.input(i));
        }
      }
      if (wide) {
        wideOutputs.addAll(n.outputs());
      }
    }
    // A constant read both by a float32 node and a float16 one is stored once, in float16, and widened by a Cast.
    wideConstants.removeAll(readByHalf);
    wideConstants.retainAll(g.initializers().stream().filter(t -> t.dtype() == DType.FLOAT).map(Tensor::name).toList());

    Map<String, Node> producers = new HashMap<>();
    g.nodes().forEach(n -> n.outputs().forEach(o -> producers.put(o, n)));
    Map<String, DType> initTypes = new HashMap<>();
    g.initializers().forEach(t -> initTypes.put(t.name(), t.dtype()));
    g.inputs().forEach(v -> initTypes.putIfAbsent(v.name(), v.type() == null ? null : v.type().dtype()));
    List<Tensor> inits = new ArrayList<>();
    for (Tensor t : g.initializers()) {
      boolean narrow = t.dtype() == DType.FLOAT && !wideConstants.contains(t.name());
      inits.add(narrow ? half(t) : t);
    }

    List<Node> entry = new ArrayList<>();
    Map<String, String> renamedInputs = new HashMap<>();
    for (Value v : g.inputs()) {
      if (v.type() != null && v.type().dtype() == DType.FLOAT && !halfEdges.contains(v.name())
          && g.initializer(v.name()).isEmpty()) {
        String narrow = b.fresh(v.name() + "_float16");
        entry.add(cast(b.fresh(v.name() + "_to_float16"), v.name(), narrow, DType.FLOAT16));
        renamedInputs.put(v.name(), narrow);
      }
    }
    Map<String, String> renamedOutputs = new LinkedHashMap<>();
    for (Value v : g.outputs()) {
      if (v.type() != null && v.type().dtype() == DType.FLOAT && !halfEdges.contains(v.name())
          && !renamedInputs.containsKey(v.name())) {
        renamedOutputs.put(v.name(), b.fresh(v.name() + "_float16"));
      }
    }

    // Casts between float16 and float32 regions, one per value and direction.
    Map<String, String> widened = new HashMap<>();
    Map<String, String> narrowed = new HashMap<>();
    List<Node> nodes = new ArrayList<>(entry);
    for (Node n : g.nodes()) {
      boolean wide = n.outputs().stream().anyMatch(float32Outputs::contains);
      Node m = wide ? n : narrowAttributes(n);
      List<String> in = new ArrayList<>();
      for (int i = 0; i < n.inputs().size(); i++) {
        String x = renamedInputs.getOrDefault(n.input(i), renamedOutputs.getOrDefault(n.input(i), n.input(i)));
        boolean xWide = wideOutputs.contains(n.input(i)) || wideConstants.contains(n.input(i));
        if (x.isEmpty() || !isFloat(n.input(i), initTypes, producers)) {
          in.add(x);
        } else if ((wide || fixedFloat32(n, i)) && !xWide) {
          in.add(widened.computeIfAbsent(x, v -> {
            String w = b.fresh(v + "_float32");
            nodes.add(cast(b.fresh(v + "_to_float32"), v, w, DType.FLOAT));
            return w;
          }));
        } else if (!wide && !fixedFloat32(n, i) && xWide) {
          in.add(narrowed.computeIfAbsent(x, v -> {
            String h = b.fresh(v + "_float16");
            nodes.add(cast(b.fresh(v + "_to_float16"), v, h, DType.FLOAT16));
            return h;
          }));
        } else {
          in.add(x);
        }
      }
      List<String> out = n.outputs().stream().map(o -> renamedOutputs.getOrDefault(o, o)).toList();
      nodes.add(m.withInputs(in).withOutputs(out));
    }
    for (Map.Entry<String, String> e : renamedOutputs.entrySet()) {
      String source = e.getValue();
      if (wideOutputs.contains(e.getKey())) {
        nodes.add(Node.of(b.fresh(e.getKey() + "_identity"), "Identity", List.of(source), List.of(e.getKey())));
      } else {
        nodes.add(cast(b.fresh(e.getKey() + "_to_float32"), source, e.getKey(), DType.FLOAT));
      }
    }
    List<Value> info = new ArrayList<>();
    for (Value v : g.valueInfo()) {
      boolean narrow = v.type() != null && v.type().dtype() == DType.FLOAT && !wideOutputs.contains(v.name());
      info.add(narrow ? v.withType(new TensorType(DType.FLOAT16, v.type().shape())) : v);
    }
    List<Value> outputs = g.outputs().stream().map(v -> halfEdges.contains(v.name()) && v.type() != null
        && v.type().dtype() == DType.FLOAT ? v.withType(new TensorType(DType.FLOAT16, v.type().shape())) : v).toList();
    List<Value> inputs = g.inputs().stream().map(v -> halfEdges.contains(v.name()) && v.type() != null
        && v.type().dtype() == DType.FLOAT ? v.withType(new TensorType(DType.FLOAT16, v.type().shape())) : v).toList();
    return model.withGraph(g.withNodes(nodes).withInitializers(inits).withValueInfo(info).withInputs(inputs)
        .withOutputs(outputs).topologicallySorted());
  }

  /**
   * Whether a value holds floats (in either width): a float graph input or initializer, a float Constant, or the
   * output of an operator that computes on floats. Only asked where a float16 and a float32 region meet.
   */
  private static boolean isFloat(String value, Map<String, DType> initTypes, Map<String, Node> producers) {
    if (initTypes.containsKey(value)) {
      return initTypes.get(value) == DType.FLOAT;
    }
    Node p = producers.get(value);
    if (p == null) {
      return false;
    }
    if (p.is("Constant")) {
      return p.attribute("value").filter(a -> a instanceof Attribute.TensorAttr t && t.value().dtype() == DType.FLOAT)
          .isPresent() || p.attribute("value_float").isPresent() || p.attribute("value_floats").isPresent();
    }
    if (p.is("Cast")) {
      long to = p.intAttr("to", 0);
      return to == DType.FLOAT.code() || to == DType.FLOAT16.code();
    }
    if (p.is("ConstantOfShape")) {
      return p.attribute("value").map(a -> a instanceof Attribute.TensorAttr t && t.value().dtype() == DType.FLOAT)
          .orElse(true);
    }
    return !Set.of("Shape", "Size", "NonZero", "ArgMax", "ArgMin", "Equal", "Greater", "Less", "GreaterOrEqual",
        "LessOrEqual", "Not", "And", "Or", "IsNaN", "IsInf", "Range").contains(p.opType());
  }

  /** A float32 tensor as float16, saturated at float16's largest finite magnitude. */
  static Tensor half(Tensor t) {
    float[] v = t.floats();
    ByteBuffer raw = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float x : v) {
      raw.putShort(Float.floatToFloat16(Float.isNaN(x) ? x : Math.max(-MAX, Math.min(MAX, x))));
    }
    return Tensor.ofBytes(t.name(), DType.FLOAT16, t.dims(), raw.array());
  }

  /** Float tensor attributes (Constant's and ConstantOfShape's values) and float Cast targets in float16. */
  private static Node narrowAttributes(Node n) {
    Node out = n;
    if (n.is("Cast") && n.intAttr("to", 0) == DType.FLOAT.code()) {
      out = out.withAttribute(Attribute.of("to", (long) DType.FLOAT16.code()));
    }
    if (n.is("ConstantOfShape") && n.attribute("value").isEmpty()) {
      // Without a value it writes float32 zeros.
      return n.withAttribute(Attribute.of("value", half(Tensor.ofFloats("", List.of(1L), new float[] {0f}))));
    }
    if (n.is("Constant") && n.attribute("value_float").isPresent()) {
      float f = n.floatAttr("value_float", 0f);
      return new Node(n.name(), n.opType(), n.domain(), n.inputs(), n.outputs(),
          List.of(Attribute.of("value", half(Tensor.ofFloats("", List.of(), new float[] {f})))), n.extras());
    }
    if (n.is("Constant") && n.attribute("value_floats").orElse(null) instanceof Attribute.FloatsAttr fs) {
      float[] f = new float[fs.values().size()];
      for (int i = 0; i < f.length; i++) {
        f[i] = fs.values().get(i);
      }
      return new Node(n.name(), n.opType(), n.domain(), n.inputs(), n.outputs(),
          List.of(Attribute.of("value", half(Tensor.ofFloats("", List.of((long) f.length), f)))), n.extras());
    }
    for (Attribute a : n.attributes()) {
      if (a instanceof Attribute.TensorAttr t && t.value().dtype() == DType.FLOAT) {
        out = out.withAttribute(new Attribute.TensorAttr(t.name(), half(t.value()), t.extras()));
      }
    }
    return out;
  }

  /**
   * What {@link #apply} computes in float32 in a ViT: the outputs of every node of its spelled-out norms (none
   * for a model that is not a ViT vitq recognises, null).
   */
  public static Set<String> float32Outputs(VitStructure vit) {
    Set<String> out = new HashSet<>();
    if (vit == null) {
      return out;
    }
    List<VitStructure.Norm> norms = new ArrayList<>();
    for (VitStructure.Block b : vit.blocks()) {
      norms.add(b.norm1());
      norms.add(b.norm2());
      norms.add(b.mlp().norm());
    }
    norms.add(vit.finalNorm());
    norms.add(vit.embedding().preNorm());
    for (VitStructure.Norm n : norms) {
      if (n != null && (n.kind() == VitStructure.Norm.Kind.DECOMPOSED
          || n.kind() == VitStructure.Norm.Kind.RMS_DECOMPOSED)) {
        out.addAll(n.nodes());
      }
    }
    return out;
  }

  /** Inputs ONNX defines as float32 whatever the data type: Resize's and Upsample's scales. */
  private static boolean fixedFloat32(Node n, int input) {
    return n.domain().isEmpty() && (n.is("Resize") && input == 2 || n.is("Upsample") && input == 1);
  }

  private static Node cast(String name, String from, String to, DType type) {
    return Node.of(name, "Cast", List.of(from), List.of(to), Attribute.of("to", (long) type.code()));
  }
}
