package dev.vitq.models.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.FunctionProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Inlines a model's local functions: PyTorch's {@code torch.onnx.dynamo_export} writes every module (and many
 * torch_lib operators) as a model-local {@code FunctionProto} called from the graph, which hides the layers from
 * recognition and the weights' readers from quantization. Each call becomes the function's body, its values renamed
 * under the call's name, its attribute references replaced by the call's attributes (or the function's defaults).
 *
 * <p>The result computes the same (ONNX Runtime inlines functions the same way when it loads them) and carries no
 * functions; {@code convert} does not use it, so the functions survive a round trip.
 */
public final class LocalFunctions {
  /** Deepest nesting of calls inlined; exporters nest module functions a few levels. */
  private static final int MAX_DEPTH = 32;

  private final Map<String, FunctionProto> functions = new HashMap<>();
  private final Map<String, List<Node>> bodies = new HashMap<>();
  private final OnnxReader reader;
  private int calls;

  private LocalFunctions(List<FunctionProto> list, String source) {
    for (FunctionProto f : list) {
      functions.put(key(f.getDomain(), f.getName()), f);
    }
    this.reader = new OnnxReader(null, source);
  }

  private static String key(String domain, String name) {
    return domain + "\u0000" + name;
  }

  /**
   * The model with every call of a local function replaced by the function's body; the model itself when it has
   * no local functions.
   *
   * @throws VitqException if a function is malformed or nests deeper than {@value #MAX_DEPTH} calls
   */
  public static Model inline(Model model, String source) throws VitqException {
    if (model.extras().isEmpty()) {
      return model;
    }
    ModelProto rest;
    try {
      rest = ModelProto.parseFrom(model.extras().toByteArray());
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("The reader wrote these extras", e);
    }
    if (rest.getFunctionsCount() == 0) {
      return model;
    }
    LocalFunctions l = new LocalFunctions(rest.getFunctionsList(), source);
    List<Node> nodes = l.expand(model.graph().nodes(), 0);
    List<OpsetId> opsets = new ArrayList<>(model.opsets());
    for (FunctionProto f : rest.getFunctionsList()) {
      for (OperatorSetIdProto o : f.getOpsetImportList()) {
        if (opsets.stream().noneMatch(x -> x.domain().equals(o.getDomain()))) {
          opsets.add(new OpsetId(o.getDomain(), o.getVersion()));
        }
      }
    }
    Graph g = model.graph().withNodes(nodes);
    return new Model(model.irVersion(), opsets, model.producerName(), model.producerVersion(), model.domain(),
        model.modelVersion(), model.docString(), model.metadata(), g,
        Blob.of(rest.toBuilder().clearFunctions().build().toByteArray()));
  }

  private List<Node> expand(List<Node> nodes, int depth) throws VitqException {
    List<Node> out = new ArrayList<>();
    for (Node n : nodes) {
      FunctionProto f = functions.get(key(n.domain(), n.opType()));
      if (f == null) {
        out.add(n);
        continue;
      }
      if (depth >= MAX_DEPTH) {
        throw new VitqException(reader.source() + " nests local functions deeper than " + MAX_DEPTH + " calls.");
      }
      out.addAll(expand(call(n, f), depth + 1));
    }
    return out;
  }

  /** The body of {@code f} for one call {@code n}: its values renamed, inputs and outputs bound to the call's. */
  private List<Node> call(Node n, FunctionProto f) throws VitqException {
    String prefix = (n.name().isEmpty() ? f.getName() : n.name()) + "#" + (calls++) + "/";
    Map<String, String> names = new HashMap<>();
    for (int i = 0; i < f.getInputCount(); i++) {
      names.put(f.getInput(i), n.input(i));
    }
    for (int i = 0; i < f.getOutputCount(); i++) {
      names.put(f.getOutput(i), i < n.outputs().size() ? n.outputs().get(i) : "");
    }
    Map<String, Attribute> given = new HashMap<>();
    n.attributes().forEach(a -> given.put(a.name(), a));
    Map<String, Attribute> defaults = new HashMap<>();
    for (AttributeProto a : f.getAttributeProtoList()) {
      defaults.put(a.getName(), reader.toAttribute(a));
    }
    List<Node> body = new ArrayList<>();
    for (Node b : body(f)) {
      // Node names must stay unique (ONNX Runtime refuses repeats); unnamed body nodes get their position.
      String name = prefix + (b.name().isEmpty() ? b.opType() + "_" + body.size() : b.name());
      if (b.attributes().stream().anyMatch(a -> a instanceof Attribute.GraphAttr || a instanceof Attribute.GraphsAttr)) {
        throw new VitqException(reader.source() + "'s local function " + f.getName() + " holds subgraphs, which vitq"
            + " does not inline.");
      }
      List<String> in = b.inputs().stream().map(v -> rename(v, names, prefix)).toList();
      List<String> outs = b.outputs().stream().map(v -> rename(v, names, prefix)).toList();
      List<Attribute> attrs = new ArrayList<>();
      for (Attribute a : b.attributes()) {
        String ref = referenced(a);
        if (ref.isEmpty()) {
          attrs.add(a);
        } else {
          Attribute value = given.getOrDefault(ref, defaults.get(ref));
          if (value != null) {
            attrs.add(renamed(value, a.name()));
          }
        }
      }
      body.add(new Node(name, b.opType(), b.domain(), in, outs, attrs, b.extras()));
    }
    return body;
  }

  private List<Node> body(FunctionProto f) throws VitqException {
    String k = key(f.getDomain(), f.getName());
    List<Node> cached = bodies.get(k);
    if (cached == null) {
      cached = new ArrayList<>();
      for (NodeProto p : f.getNodeList()) {
        cached.add(reader.toNode(p));
      }
      bodies.put(k, cached);
    }
    return cached;
  }

  private static String rename(String v, Map<String, String> names, String prefix) {
    if (v.isEmpty()) {
      return v;
    }
    String bound = names.get(v);
    return bound != null ? bound : prefix + v;
  }

  /** The name of the caller's attribute this one refers to, or "". */
  private static String referenced(Attribute a) {
    if (a.extras().isEmpty()) {
      return "";
    }
    try {
      return AttributeProto.parseFrom(a.extras().toByteArray()).getRefAttrName();
    } catch (InvalidProtocolBufferException e) {
      return "";
    }
  }

  private static Attribute renamed(Attribute a, String name) {
    return switch (a) {
      case Attribute.FloatAttr f -> new Attribute.FloatAttr(name, f.value(), f.extras());
      case Attribute.IntAttr i -> new Attribute.IntAttr(name, i.value(), i.extras());
      case Attribute.StringAttr s -> new Attribute.StringAttr(name, s.value(), s.extras());
      case Attribute.TensorAttr t -> new Attribute.TensorAttr(name, t.value(), t.extras());
      case Attribute.GraphAttr g -> new Attribute.GraphAttr(name, g.value(), g.extras());
      case Attribute.FloatsAttr f -> new Attribute.FloatsAttr(name, f.values(), f.extras());
      case Attribute.IntsAttr i -> new Attribute.IntsAttr(name, i.values(), i.extras());
      case Attribute.StringsAttr s -> new Attribute.StringsAttr(name, s.values(), s.extras());
      case Attribute.TensorsAttr t -> new Attribute.TensorsAttr(name, t.values(), t.extras());
      case Attribute.GraphsAttr g -> new Attribute.GraphsAttr(name, g.values(), g.extras());
      case Attribute.OpaqueAttr o -> new Attribute.OpaqueAttr(name, o.typeCode(), o.extras());
    };
  }
}
