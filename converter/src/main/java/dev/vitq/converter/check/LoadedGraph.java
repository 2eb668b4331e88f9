package dev.vitq.converter.check;

import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.canon.Shapes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A graph as ONNX Runtime holds it when it asks providers for their nodes: the batch fixed if asked, Constant nodes
 * as initializers, constant subgraphs folded (a Shape of fixed dimensions, or a Gather of them, too), what nothing
 * reads dropped, Q/DQ pairs propagated through data-movement operators ({@link QdqPropagation}), and MatMul plus
 * bias Add fused into the Gemm its basic optimizations make. Quantize and dequantize
 * nodes are never folded: ONNX Runtime leaves them for the providers that fuse them.
 *
 * @param graph the graph with the batch fixed (and any propagated Q/DQ pairs)
 * @param shapes its inferred element types and shapes
 * @param constants the values that are constant once loaded
 * @param live the nodes left, in topological order, fused Gemms in place of their MatMul and Add
 * @param folded how many nodes of the file fold away
 * @param fused each fused Gemm, with A's flattened dimensions (empty when A was 2-D already)
 */
record LoadedGraph(Graph graph, Shapes shapes, Set<String> constants, List<Node> live, int folded,
    Map<Node, long[]> fused) {

  static LoadedGraph of(Model model, int batch) {
    Graph graph = batch > 0 ? withBatch(model.graph(), batch) : model.graph();
    Shapes shapes = Shapes.of(graph);
    List<Node> order = graph.topologicalOrder().orElse(graph.nodes());
    Set<String> constants = new HashSet<>();
    for (Tensor t : graph.initializers()) {
      if (graph.input(t.name()).isEmpty()) {
        constants.add(t.name());
      }
    }
    List<Node> live = new ArrayList<>();
    Map<String, Node> shapeOf = new HashMap<>();
    for (Node n : order) {
      if (n.is("Shape")) {
        shapeOf.put(n.output(), n);
      }
      if (foldsAtLoad(n, constants, shapes) || gathersFixedDims(n, constants, shapes, shapeOf)) {
        n.outputs().stream().filter(o -> !o.isEmpty()).forEach(constants::add);
      } else {
        live.add(n);
      }
    }
    live = withoutDeadNodes(graph, live);
    int folded = graph.nodes().size() - live.size();
    List<Node> propagated = QdqPropagation.apply(graph, live, constants, shapes);
    if (propagated.size() != live.size()) {
      // New values between the inserted pairs: infer again over the whole graph, folded nodes included.
      Set<Node> kept = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
      kept.addAll(live);
      List<Node> all = new ArrayList<>(graph.nodes().stream().filter(n -> !kept.contains(n)).toList());
      all.addAll(propagated);
      graph = graph.withNodes(all);
      shapes = Shapes.of(graph);
      live = propagated;
    }
    Map<Node, long[]> fused = new IdentityHashMap<>();
    live = matMulAddFusion(graph, live, shapes, fused);
    return new LoadedGraph(graph, shapes, constants, live, folded, fused);
  }

  /** The inputs' symbolic or unknown first dimension fixed to {@code batch}. */
  static Graph withBatch(Graph g, int batch) {
    List<Value> inputs = new ArrayList<>();
    for (Value v : g.inputs()) {
      TensorType t = v.type();
      if (t != null && t.shape() != null && !t.shape().isEmpty() && !t.shape().get(0).isFixed()
          && g.initializer(v.name()).isEmpty()) {
        List<Dim> dims = new ArrayList<>(t.shape());
        dims.set(0, Dim.of(batch));
        v = v.withType(new TensorType(t.dtype(), dims));
      }
      inputs.add(v);
    }
    return g.withInputs(inputs);
  }

  // ---- what ONNX Runtime removes before providers see the graph -----------------------------------------------

  private static final Set<String> NEVER_FOLDED = Set.of("QuantizeLinear", "DequantizeLinear", "RandomUniform",
      "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial");

  private static boolean foldsAtLoad(Node n, Set<String> constants, Shapes shapes) {
    boolean onnx = n.domain().isEmpty() || n.domain().equals(OpTable.ONNX);
    if (onnx && n.opType().equals("Constant")) {
      return true;
    }
    if (!onnx || NEVER_FOLDED.contains(n.opType()) || hasSubgraph(n) || n.outputs().isEmpty()) {
      return false;
    }
    if ((n.opType().equals("Shape") || n.opType().equals("Size"))) {
      return shapes.dims(n.input(0)).map(d -> Arrays.stream(d).allMatch(x -> x >= 0)).orElse(false);
    }
    return n.inputs().stream().allMatch(i -> i.isEmpty() || constants.contains(i));
  }

  /**
   * A Gather of fixed dimensions from a Shape (the sequence length and width of {@code x.shape[1:]} while the batch
   * stays symbolic): ONNX Runtime's constant folding knows those dimensions and folds the Gather, though not the
   * Shape.
   */
  private static boolean gathersFixedDims(Node n, Set<String> constants, Shapes shapes, Map<String, Node> shapeOf) {
    if (!n.is("Gather") || !constants.contains(n.input(1)) || n.intAttr("axis", 0) != 0) {
      return false;
    }
    Node shape = shapeOf.get(n.input(0));
    Optional<long[]> indices = shapes.longs(n.input(1));
    if (shape == null || indices.isEmpty() || shape.intAttr("start", 0) != 0 || shape.attribute("end").isPresent()) {
      return false;
    }
    Optional<long[]> dims = shapes.dims(shape.input(0));
    if (dims.isEmpty()) {
      return false;
    }
    long[] d = dims.get();
    for (long i : indices.get()) {
      long k = i < 0 ? i + d.length : i;
      if (k < 0 || k >= d.length || d[(int) k] < 0) {
        return false;
      }
    }
    return true;
  }

  /** Nodes none of whose outputs is read or is a graph output: ONNX Runtime drops them once their readers fold. */
  private static List<Node> withoutDeadNodes(Graph g, List<Node> live) {
    Set<String> graphOutputs = new HashSet<>();
    g.outputs().forEach(v -> graphOutputs.add(v.name()));
    List<Node> current = live;
    while (true) {
      Set<String> read = new HashSet<>(graphOutputs);
      current.forEach(n -> read.addAll(Graph.usedValues(n)));
      List<Node> next = current.stream().filter(n -> n.outputs().stream().anyMatch(read::contains)).toList();
      if (next.size() == current.size()) {
        return current;
      }
      current = next;
    }
  }

  static boolean hasSubgraph(Node n) {
    return n.attributes().stream().anyMatch(a -> a instanceof Attribute.GraphAttr || a instanceof Attribute.GraphsAttr);
  }

  // ---- MatMul + Add as the Gemm ONNX Runtime makes of them --------------------------------------------------

  /**
   * ONNX Runtime's basic MatMulAddFusion, which runs before partitioning: a float MatMul with a 2-D B whose only
   * reader is an Add of a bias becomes a Gemm, with A flattened to 2-D by a Reshape (and the result reshaped back)
   * when A has a fixed shape of higher rank. Providers then see a Gemm where the file has MatMul and Add; NNAPI,
   * which takes a 2-D product only, takes the linear layers of a transformer only this way.
   *
   * @param fused receives each Gemm made, with A's flattened dimensions (empty when A was 2-D already)
   */
  private static List<Node> matMulAddFusion(Graph g, List<Node> live, Shapes shapes,
      Map<Node, long[]> fused) {
    Map<String, List<Node>> readers = new HashMap<>();
    Map<String, Node> producer = new HashMap<>();
    for (Node n : live) {
      n.outputs().forEach(o -> producer.put(o, n));
      for (String in : Graph.usedValues(n)) {
        readers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
      }
    }
    Set<String> graphOutputs = new HashSet<>();
    g.outputs().forEach(v -> graphOutputs.add(v.name()));
    Map<Node, Node> replaced = new IdentityHashMap<>();
    Set<Node> dropped = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    for (Node mm : live) {
      if (!mm.is("MatMul") || graphOutputs.contains(mm.output())) {
        continue;
      }
      List<Node> r = readers.getOrDefault(mm.output(), List.of());
      if (r.size() != 1 || !r.get(0).is("Add") || dropped.contains(r.get(0))) {
        continue;
      }
      Node add = r.get(0);
      String bias = add.input(0).equals(mm.output()) ? add.input(1) : add.input(0);
      Optional<long[]> a = shapes.dims(mm.input(0));
      Optional<long[]> b = shapes.dims(mm.input(1));
      Optional<long[]> c = shapes.dims(bias);
      DType t = shapes.dtype(mm.input(0)).orElse(null);
      boolean fromDq = Arrays.asList(mm.input(0), mm.input(1)).stream()
          .map(producer::get).anyMatch(p -> p != null && p.is("DequantizeLinear"));
      if (a.isEmpty() || b.isEmpty() || c.isEmpty() || b.get().length != 2 || a.get().length < 2 || fromDq
          || !(t == DType.FLOAT || t == DType.FLOAT16 || t == DType.DOUBLE)) {
        continue;
      }
      long n = b.get()[1];
      long[] cd = c.get();
      boolean vectorBias = cd.length == 1 && (cd[0] == n || cd[0] == 1)
          || cd.length == 2 && cd[0] == 1 && (cd[1] == n || cd[1] == 1);
      long[] ad = a.get();
      boolean fixedA = Arrays.stream(ad).allMatch(d -> d >= 0);
      if (!vectorBias || (ad.length > 2 && !fixedA)) {
        continue;
      }
      long rows = 1;
      for (int i = 0; i < ad.length - 1; i++) {
        rows *= ad[i];
      }
      Node gemm = new Node(mm.name(), "Gemm", "", List.of(mm.input(0), mm.input(1), bias), add.outputs(), List.of(),
          Blob.EMPTY);
      fused.put(gemm, ad.length > 2 ? new long[] {rows, ad[ad.length - 1]} : new long[0]);
      replaced.put(mm, gemm);
      dropped.add(add);
    }
    List<Node> out = new ArrayList<>();
    for (Node n : live) {
      if (!dropped.contains(n)) {
        out.add(replaced.getOrDefault(n, n));
      }
    }
    return out;
  }
}
