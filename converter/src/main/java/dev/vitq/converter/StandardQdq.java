package dev.vitq.converter;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.DeadCode;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The deploy pass of every target but {@link Target#CPU}: a lowered model in ONNX Runtime's QDQ format, with
 * standard operators only, in the form providers recognise.
 *
 * <ul>
 *   <li>DequantizeLinear reads constants directly: float16 weight scales become float32 initializers, and int4 weights
 *       are read as INT4 by the standard (opset 21) DequantizeLinear, or stored as int8 levels for a target that does
 *       not take INT4. (The CPU form keeps both behind a Cast that ONNX Runtime folds at load time; a provider
 *       partitions the graph before that, and a Cast between a constant and its DequantizeLinear is no QDQ group.)
 *   <li>Weight DequantizeLinear gets its zero point (0) written out, as ONNX Runtime's own quantizer writes it.
 *   <li>Levels narrower than their 8-bit type are clipped between a QuantizeLinear and its DequantizeLinear in the
 *       lowered model; a provider sees no QDQ pair there. The clip moves to the float side of an exact pair, {@code
 *       Q, DQ, Clip(float), Q, DQ}: the levels are the same, and every operator sits between DequantizeLinear and
 *       QuantizeLinear.
 *   <li>A per-axis weight scale whose channels are all equal (a target without per-channel MatMul weights) becomes
 *       a scalar.
 * </ul>
 */
final class StandardQdq {
  private final GraphIndex index;
  private final GraphBuilder b;
  private final Target target;
  private final Map<String, String> int4Storage = new HashMap<>();

  private StandardQdq(Graph graph, Target target) {
    this.index = GraphIndex.of(graph);
    this.b = GraphBuilder.around(graph);
    this.target = target;
  }

  /**
   * The lowered model in standard QDQ form for {@code target}.
   *
   * @throws VitqException if the model holds an operator outside the standard domain, or a clipped pair whose
   *     scale is not a constant scalar
   */
  static Model apply(Model lowered, Target target) throws VitqException {
    Graph g = lowered.graph();
    for (Node n : g.nodes()) {
      if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
        throw new VitqException("--target " + target.cliName() + " writes standard ONNX operators only, and the "
            + "model holds " + n.domain() + "." + n.opType() + " ('" + n.name() + "'); export the model without "
            + "runtime-specific operators, or use --target cpu.");
      }
    }
    StandardQdq pass = new StandardQdq(g, target);
    List<Node> nodes = new ArrayList<>();
    for (Node n : g.nodes()) {
      if (n.is("DequantizeLinear")) {
        nodes.add(pass.dequantize(n));
      } else if (n.is("Clip") && pass.clippedLevels(n).isPresent()) {
        int start = pass.b.nodes().size();
        pass.floatClip(n, pass.clippedLevels(n).get());
        nodes.addAll(pass.b.nodes().subList(start, pass.b.nodes().size()));
      } else {
        nodes.add(n);
      }
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(pass.b.initializers());
    Model out = lowered.withGraph(g.withNodes(nodes).withInitializers(inits));
    // No runtime-specific domain is imported either: a provider reads an import as a promise of its operators.
    out = new Model(out.irVersion(), out.opsets().stream().filter(o -> o.domain().isEmpty()
        || o.domain().equals("ai.onnx")).toList(), out.producerName(), out.producerVersion(), out.domain(),
        out.modelVersion(), out.docString(), out.metadata(), out.graph(), out.extras());
    return DeadCode.apply(out);
  }

  /**
   * The model with every INT4 initializer a DequantizeLinear reads (levels and zero points) stored as int8: the same
   * numbers, in a type ONNX Runtime's ORT format holds. The model itself when it has none.
   */
  static Model withoutInt4(Model model) {
    Graph g = model.graph();
    if (g.initializers().stream().noneMatch(t -> t.dtype() == DType.INT4)) {
      return model;
    }
    List<Tensor> inits = new ArrayList<>();
    for (Tensor t : g.initializers()) {
      inits.add(t.dtype() == DType.INT4 ? Tensor.ofBytes(t.name(), DType.INT8, t.dims(), unpack4(t)) : t);
    }
    return model.withGraph(g.withInitializers(inits));
  }

  // ---- DequantizeLinear on constants -------------------------------------------------------------------------

  private Node dequantize(Node dq) {
    List<String> in = new ArrayList<>(dq.inputs());
    while (in.size() < 3) {
      in.add("");
    }
    Tensor levels = index.constant(in.get(0)).orElse(null);
    Optional<Tensor> cast = foldedCast(in.get(0));
    if (levels == null && cast.isPresent() && cast.get().dtype() == DType.INT4) {
      levels = cast.get();
      in.set(0, int4(levels));
    }
    Tensor scale = index.constant(in.get(1)).orElse(null);
    Optional<Tensor> half = foldedCast(in.get(1)).filter(s -> s.dtype() == DType.FLOAT16);
    if (scale == null && half.isPresent()) {
      scale = Tensor.ofFloats("", half.get().dims(), half.get().floats());
      in.set(1, b.initializer(half.get().name() + "_f32", scale));
    }
    if (levels == null || scale == null) {
      return dq.withInputs(in);
    }
    DType levelType = levels.dtype() == DType.INT4 && !target.int4Weights() ? DType.INT8 : levels.dtype();
    boolean collapse = !target.perChannelLinearWeights() && scale.rank() == 1 && readByLinear(dq.output())
        && equalScales(scale.floats());
    List<Attribute> attrs = dq.attributes();
    List<Long> dims = scale.dims();
    if (collapse) {
      dims = List.of();
      in.set(1, b.initializer(in.get(1) + "_tensor", Tensor.ofFloats("", dims, new float[] {scale.floats()[0]})));
      attrs = attrs.stream().filter(a -> !a.name().equals("axis")).toList();
    }
    if (in.get(2).isEmpty() || collapse) {
      int count = (int) Tensor.elementCount(dims);
      byte[] zeros = new byte[levelType == DType.INT4 ? (count + 1) / 2 : count];
      in.set(2, b.initializer(in.get(0) + "_zero_point", Tensor.ofBytes("", levelType, dims, zeros)));
    }
    return new Node(dq.name(), dq.opType(), dq.domain(), in, dq.outputs(), attrs, dq.extras());
  }

  /** The constant behind a value, or behind a Cast of a constant. */
  private Optional<Tensor> foldedCast(String value) {
    return index.producer(value, "Cast").flatMap(c -> index.constant(c.input(0)));
  }

  /** The INT4 weight as the target stores it: INT4 itself, or its levels as int8. */
  private String int4(Tensor packed) {
    return int4Storage.computeIfAbsent(packed.name(), k -> target.int4Weights() ? packed.name()
        : b.initializer(packed.name().replaceFirst("_int4$", "") + "_int8", Tensor.ofBytes("", DType.INT8,
            packed.dims(), unpack4(packed))));
  }

  /** Signed 4-bit levels, two per byte with the first in the low nibble, as bytes. */
  static byte[] unpack4(Tensor packed) {
    ByteBuffer raw = packed.data();
    int n = (int) packed.elementCount();
    byte[] out = new byte[n];
    for (int i = 0; i < n; i++) {
      int nibble = (raw.get(raw.position() + i / 2) >> ((i & 1) * 4)) & 0x0f;
      out[i] = (byte) (nibble >= 8 ? nibble - 16 : nibble);
    }
    return out;
  }

  private boolean readByLinear(String value) {
    return index.consumers(value).stream().allMatch(n -> n.is("MatMul") || n.is("Gemm"));
  }

  private static boolean equalScales(float[] s) {
    for (float v : s) {
      if (v != s[0]) {
        return false;
      }
    }
    return true;
  }

  // ---- clipped levels ----------------------------------------------------------------------------------------

  /** A Clip of a QuantizeLinear's levels by constant bounds, with the scale and zero point: the bounds as levels. */
  private record ClippedLevels(Node quantize, float scale, int zero, int lo, int hi) {}

  private Optional<ClippedLevels> clippedLevels(Node clip) {
    Node q = index.producer(clip.input(0), "QuantizeLinear").orElse(null);
    if (q == null || clip.inputs().size() < 3 || q.inputs().size() < 3) {
      return Optional.empty();
    }
    Optional<Tensor> s = index.constant(q.input(1)).filter(t -> t.elementCount() == 1 && t.dtype() == DType.FLOAT);
    Optional<Tensor> z = index.constant(q.input(2)).filter(t -> t.elementCount() == 1);
    Optional<Tensor> lo = index.constant(clip.input(1)).filter(t -> t.elementCount() == 1);
    Optional<Tensor> hi = index.constant(clip.input(2)).filter(t -> t.elementCount() == 1);
    if (s.isEmpty() || z.isEmpty() || lo.isEmpty() || hi.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(new ClippedLevels(q, s.get().floats()[0], level(z.get()), level(lo.get()),
        level(hi.get())));
  }

  private static int level(Tensor t) {
    ByteBuffer raw = t.data();
    return switch (t.dtype()) {
      case UINT8 -> raw.get(raw.position()) & 0xff;
      case INT8 -> raw.get(raw.position());
      case UINT16 -> raw.order(java.nio.ByteOrder.LITTLE_ENDIAN).getShort(raw.position()) & 0xffff;
      case INT16 -> raw.order(java.nio.ByteOrder.LITTLE_ENDIAN).getShort(raw.position());
      default -> throw new IllegalArgumentException("Levels of type " + t.dtype());
    };
  }

  /**
   * {@code Clip(Q(x))} as {@code Q(Clip(DQ(Q(x))))}: the bounds in float are the bounding levels' values, computed
   * as DequantizeLinear computes them, so the second pair returns exactly the clipped levels.
   */
  private void floatClip(Node clip, ClippedLevels c) {
    Node q = c.quantize();
    String dq = b.op("DequantizeLinear", List.of(q.output(), q.input(1), q.input(2)));
    String lo = b.scalar((float) (c.lo() - c.zero()) * c.scale());
    String hi = b.scalar((float) (c.hi() - c.zero()) * c.scale());
    String clipped = b.op("Clip", List.of(dq, lo, hi));
    b.add(new Node(clip.name(), "QuantizeLinear", "", List.of(clipped, q.input(1), q.input(2)), clip.outputs(),
        List.of(), clip.extras()));
  }
}
