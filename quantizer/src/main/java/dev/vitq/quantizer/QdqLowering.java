package dev.vitq.quantizer;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Lowers a plan onto a float model as QuantizeLinear/DequantizeLinear pairs, the standard ONNX form of quantization.
 *
 * <p>{@link Mode#DEPLOY}: weights are stored as integers (int8, or int4 behind a Cast that ONNX Runtime folds at load
 * time), scales are constants, and ONNX Runtime fuses each DequantizeLinear-MatMul pair into an integer kernel.
 * {@link Mode#SIMULATE}: weights stay float and every scale is a graph input named {@link #SCALE_INPUT_PREFIX} +
 * tensor, so a search can try new scales in one session without rebuilding it. Both compute the same quantized
 * network.
 *
 * <p>Uniform 8-bit quantizers become a Q/DQ pair; narrower ones clip the 8-bit levels in between; twin uniform ones
 * become one clipped pair per side of zero, summed and re-quantized exactly; log2 quantizers become their formula in
 * float operators. A quantized tensor's readers read the dequantized value, except that a layer norm's input
 * quantizer is read by the norm only: the residual Add that carries the stream on is a float operator fed by float
 * kernel outputs in the deployed graph, and quantizing the stream it carries would only add error (agreement 0.9826
 * against 0.9882 at W8A8 on the shared model).
 */
public final class QdqLowering {
  /** How the lowered model is meant to be used. */
  public enum Mode { DEPLOY, SIMULATE }

  /** Prefix of the scale inputs of a {@link Mode#SIMULATE} model. */
  public static final String SCALE_INPUT_PREFIX = "vitq.scale:";

  private final Graph graph;
  /** The tensors whose quantizers are simulated (scales as inputs, float weights); the rest are deployed. */
  private final Set<String> simulated;
  /** Residual streams quantized for every reader, not only for their norm. */
  private final Set<String> streams;
  /** Whether the entry being lowered is simulated. */
  private boolean simulating;
  private final GraphBuilder b;
  private final List<Value> scaleInputs = new ArrayList<>();
  private boolean int4Storage;

  private QdqLowering(Graph graph, Set<String> simulated, Set<String> streams) {
    this.graph = graph;
    this.simulated = simulated;
    this.streams = streams;
    this.b = GraphBuilder.around(graph);
  }

  /**
   * Lowers a plan.
   *
   * @throws VitqException if the plan names a tensor the model does not have
   */
  public static Model lower(Model model, QuantPlan plan, Mode mode) throws VitqException {
    return lower(model, plan, mode, Set.of());
  }

  /**
   * Lowers a plan with the residual stream quantized for every reader at the {@code NORM_INPUT} tensors in {@code
   * streams}, not only for its norm: the boundary of a device/cloud split, whose tokens cross as levels.
   *
   * @throws VitqException if the plan names a tensor the model does not have
   */
  public static Model lower(Model model, QuantPlan plan, Mode mode, Set<String> streams) throws VitqException {
    Set<String> simulated = new HashSet<>();
    if (mode == Mode.SIMULATE) {
      plan.entries().forEach(e -> simulated.add(e.tensor()));
    }
    return lower(model, plan, simulated, streams);
  }

  /**
   * Lowers a plan with the quantizers of {@code simulated} tensors as in {@link Mode#SIMULATE} (scales as graph
   * inputs, float weights) and every other one as in {@link Mode#DEPLOY}: a search that changes only a few scales
   * runs the rest of the network on ONNX Runtime's integer kernels.
   *
   * @throws VitqException if the plan names a tensor the model does not have
   */
  public static Model lower(Model model, QuantPlan plan, Set<String> simulated) throws VitqException {
    return lower(model, plan, simulated, Set.of());
  }

  private static Model lower(Model model, QuantPlan plan, Set<String> simulated, Set<String> streams)
      throws VitqException {
    Model sorted = model.withGraph(model.graph().topologicallySorted());
    // Per-channel post-norm quantizers are folded into the norms and linear layers first; both modes see the same
    // reparameterised float weights, so simulated and deployed models compute the same thing.
    sorted = sorted.withGraph(LayerNormReparam.apply(sorted.graph(), plan.entries()));
    QdqLowering l = new QdqLowering(sorted.graph(), Set.copyOf(simulated), Set.copyOf(streams));
    Graph lowered = l.apply(plan);
    // Per-channel weights need per-axis DequantizeLinear (opset 13); stored int4 or 16-bit levels, opset 21.
    boolean wide = plan.entries().stream().anyMatch(e -> e.quantizer().bits() > 8);
    return OpsetUpgrade.to(sorted.withGraph(lowered), l.int4Storage || wide ? 21 : 13);
  }

  private Graph apply(QuantPlan plan) throws VitqException {
    Map<String, Tensor> initializers = new LinkedHashMap<>();
    graph.initializers().forEach(t -> initializers.put(t.name(), t));
    Set<String> produced = new HashSet<>();
    graph.nodes().forEach(n -> produced.addAll(n.outputs()));
    Set<String> inputs = new HashSet<>();
    graph.inputs().forEach(v -> inputs.add(v.name()));

    Map<String, String> replacement = new HashMap<>();
    Map<String, List<Node>> after = new HashMap<>();
    List<Node> prelude = new ArrayList<>();
    Set<String> replacedWeights = new HashSet<>();
    for (PlanEntry e : plan.entries()) {
      String t = e.tensor();
      simulating = simulated.contains(t);
      int start = b.nodes().size();
      String out;
      if (e.role() == Role.WEIGHT) {
        Tensor w = initializers.get(t);
        if (w == null) {
          throw new VitqException("The plan quantizes weight '" + t + "', which the model does not have.");
        }
        out = weight(w, e.quantizer());
        if (!simulating) {
          replacedWeights.add(t);
        }
      } else {
        if (!produced.contains(t) && !inputs.contains(t)) {
          throw new VitqException("The plan quantizes '" + t + "', which the model does not compute.");
        }
        out = activation(t, e);
      }
      List<Node> made = b.nodes().subList(start, b.nodes().size());
      if (e.role() == Role.WEIGHT || inputs.contains(t)) {
        prelude.addAll(made);
      } else {
        after.computeIfAbsent(t, k -> new ArrayList<>()).addAll(made);
      }
      replacement.put(t, out);
    }

    // The residual stream stays float where it continues: a norm reads it quantized, the next residual Add (a float
    // operator in the deployed graph, fed by float kernel outputs) reads it as it is. A stream in `streams` (a split's
    // boundary, which crosses as levels) is quantized for every reader.
    Map<String, String> streamReaders = new HashMap<>(replacement);
    plan.entries().stream().filter(e -> e.role() == Role.NORM_INPUT && !streams.contains(e.tensor()))
        .forEach(e -> streamReaders.remove(e.tensor()));
    List<Node> nodes = new ArrayList<>(prelude);
    for (Node n : graph.nodes()) {
      nodes.add(rewire(n, n.is("Add") ? streamReaders : replacement));
      for (String o : n.outputs()) {
        nodes.addAll(after.getOrDefault(o, List.of()));
      }
    }
    List<Tensor> kept = new ArrayList<>();
    for (Tensor t : graph.initializers()) {
      // Deployed weights live on only as integers; simulated ones stay float for in-graph quantization.
      if (!replacedWeights.contains(t.name())) {
        kept.add(t);
      }
    }
    kept.addAll(b.initializers());
    List<Value> graphInputs = new ArrayList<>(graph.inputs());
    graphInputs.addAll(scaleInputs);
    return graph.withNodes(nodes).withInitializers(kept).withInputs(graphInputs);
  }

  private static Node rewire(Node n, Map<String, String> replacement) {
    List<String> in = new ArrayList<>(n.inputs().size());
    boolean changed = false;
    for (String v : n.inputs()) {
      String r = replacement.get(v);
      in.add(r == null ? v : r);
      changed |= r != null;
    }
    // Subgraph attributes could read quantized values from the outer scope; ViTs have none, so they are left as is.
    return changed ? n.withInputs(in) : n;
  }

  // ---- activations -------------------------------------------------------------------------------------------

  private String activation(String x, PlanEntry e) {
    Quantizer q = e.quantizer();
    String base = x.replace('/', '_');
    if (q.kind() == Quantizer.Kind.TWIN) {
      return twin(base, x, q);
    }
    if (q.kind() != Quantizer.Kind.UNIFORM) {
      return log2(x, q);
    }
    if (LayerNormReparam.applies(e)) {
      return uniform(base, x, x, LayerNormReparam.tensorScale(q), LayerNormReparam.tensorZero(q), q, List.of());
    }
    float[] factors = channelFactors(e);
    if (factors != null && allOnes(factors)) {
      // Every channel at the base scale: a plain per-tensor pair, which ONNX Runtime can fuse into QLinearAdd.
      return uniform(base, x, x, q.scales()[0], q.zeroPoints()[0], q, List.of());
    }
    if (factors != null) {
      // Power-of-two channel factors: divide them out, quantize with the one base scale, multiply them back (exact
      // in float). ONNX Runtime fuses a DequantizeLinear-Add-QuantizeLinear group into QLinearAdd, which rejects
      // per-axis scales, so the per-axis form cannot be used here.
      List<Long> dims = List.of((long) factors.length);
      String factor = b.initializer(base + "_channel_factor", Tensor.ofFloats("", dims, factors));
      // The inverse is computed, not stored: ONNX Runtime folds it at load time and the file stays smaller.
      String divided = b.op("Mul", List.of(x, b.op("Reciprocal", List.of(factor))));
      String dq = uniform(base, x, divided, q.scales()[0] / factors[0], q.zeroPoints()[0], q, List.of());
      return b.op("Mul", List.of(dq, factor));
    }
    if (q.axis() < 0) {
      return uniform(base, x, x, q.scale(0), q.zeroPoints()[0], q, List.of());
    }
    // Per-axis scales, used for the image's colour channels.
    List<Long> dims = List.of((long) q.scales().length);
    int width = q.bits() > 8 ? 2 : 1;
    byte[] zeros = new byte[q.zeroPoints().length * width];
    for (int c = 0; c < q.zeroPoints().length; c++) {
      for (int k = 0; k < width; k++) {
        zeros[c * width + k] = (byte) (q.zeroPoints()[c] >> (8 * k));
      }
    }
    String scale = scale(base, x, q.scales(), dims);
    String zero = b.initializer(base + "_zero_point", Tensor.ofBytes("", width == 2 ? DType.UINT16 : DType.UINT8,
        dims, zeros));
    Attribute axis = Attribute.of("axis", (long) q.axis());
    String levels = clip(base, b.op("QuantizeLinear", List.of(x, scale, zero), axis), q);
    return b.op("DequantizeLinear", List.of(levels, scale, zero), axis);
  }

  /** A per-tensor unsigned Q/DQ pair on {@code input}, its scale named after {@code tensor}. */
  private String uniform(String base, String tensor, String input, float s, int z, Quantizer q, List<Long> dims) {
    String scale = scale(base, tensor, new float[] {s}, dims);
    // 16-bit levels are uint16 (QuantizeLinear at opset 21), little-endian like every ONNX tensor.
    String zero = b.initializer(base + "_zero_point", q.bits() > 8
        ? Tensor.ofBytes("", DType.UINT16, dims, new byte[] {(byte) z, (byte) (z >> 8)})
        : Tensor.ofBytes("", DType.UINT8, dims, new byte[] {(byte) z}));
    String levels = clip(base, b.op("QuantizeLinear", List.of(input, scale, zero)), q);
    return b.op("DequantizeLinear", List.of(levels, scale, zero));
  }

  /**
   * Levels narrower than the 8-bit type (fewer bits, or the narrow signed range): the 8-bit levels clipped to the
   * quantizer's range.
   */
  private String clip(String base, String levels, Quantizer q) {
    if (q.bits() >= 8 && !q.signed()) {
      return levels;
    }
    DType type = q.signed() ? DType.INT8 : DType.UINT8;
    return b.op("Clip", List.of(levels,
        b.initializer(base + "_qmin", Tensor.ofBytes("", type, List.of(), new byte[] {(byte) q.qmin()})),
        b.initializer(base + "_qmax", Tensor.ofBytes("", type, List.of(), new byte[] {(byte) q.qmax()}))));
  }

  /**
   * For a per-channel layer-norm input (channels on its last axis) whose scales are the smallest times powers of two,
   * with one zero point: the factors; otherwise null.
   */
  static float[] channelFactors(PlanEntry e) {
    Quantizer q = e.quantizer();
    if (e.role() != Role.NORM_INPUT || q.axis() < 0 || q.kind() != Quantizer.Kind.UNIFORM || q.signed()) {
      return null;
    }
    float min = Float.POSITIVE_INFINITY;
    for (float s : q.scales()) {
      min = Math.min(min, s);
    }
    float[] factors = new float[q.scales().length];
    for (int c = 0; c < factors.length; c++) {
      float f = q.scales()[c] / min;
      if (q.zeroPoints()[c] != q.zeroPoints()[0] || f != Math.scalb(1f, Math.getExponent(f))) {
        return null;
      }
      factors[c] = f;
    }
    return factors;
  }

  /**
   * Whether a deployed activation quantizer is lowered per axis (the image's colour channels): uniform and per
   * channel, neither folded into a norm nor a power-of-two-factor stream, both of which lower to one per-tensor pair.
   */
  public static boolean perAxisActivation(PlanEntry e) {
    Quantizer q = e.quantizer();
    return e.role().isActivation() && q.kind() == Quantizer.Kind.UNIFORM && q.axis() >= 0
        && !LayerNormReparam.applies(e) && channelFactors(e) == null;
  }

  private static boolean allOnes(float[] factors) {
    for (float f : factors) {
      if (f != 1f) {
        return false;
      }
    }
    return true;
  }

  /**
   * The values a {@link Mode#SIMULATE} model's scale input for this quantizer takes: the per-tensor or per-channel
   * scales, the base scale of a power-of-two-factor quantizer, the mean scale of a reparameterised one, or the
   * negative side's scale of a twin uniform one (the positive side's is {@code 2^m} times it).
   */
  public static float[] scaleInput(PlanEntry e) {
    Quantizer q = e.quantizer();
    if (q.kind() == Quantizer.Kind.TWIN) {
      return new float[] {q.scale(1)};
    }
    if (LayerNormReparam.applies(e)) {
      return new float[] {LayerNormReparam.tensorScale(q)};
    }
    float[] factors = channelFactors(e);
    if (factors == null) {
      return q.scales();
    }
    return new float[] {q.scales()[0] / factors[0]};
  }

  /**
   * The negative side as the fine pair with zero point {@code z} clipped to levels {@code 0..z}, the positive side as
   * the coarse pair with zero point 0 clipped to {@code 0..qmax-z} (each pair saturates the other side to 0), their
   * sum, and one exact 8-bit pair at the fine scale: the twin's values lie on that grid. ONNX Runtime runs the sum as
   * QLinearAdd and fc2 on its integer kernel. Read as a float, the sum would meet a DequantizeLinear-MatMul rewrite
   * of fc2 that computes a different product (seen with 4-bit weights).
   */
  private String twin(String base, String x, Quantizer q) {
    int zero = q.zeroPoints()[0];
    List<Long> scalar = List.of();
    // Simulated, the fine scale is the one input and the coarse one follows it: a search keeps the ratio.
    String fine = scale(base, x, new float[] {q.scale(1)}, scalar);
    String coarse = simulating ? b.op("Mul", List.of(fine, b.scalar((float) q.twinRatio())))
        : b.initializer(base + "_positive_scale", Tensor.ofFloats("", scalar, new float[] {q.scale(0)}));
    String z = b.initializer(base + "_zero_point", Tensor.ofBytes("", DType.UINT8, scalar, new byte[] {(byte) zero}));
    String none = b.initializer(base + "_positive_zero_point", Tensor.ofBytes("", DType.UINT8, scalar, new byte[1]));
    String top = b.initializer(base + "_qmax", Tensor.ofBytes("", DType.UINT8, scalar,
        new byte[] {(byte) (q.qmax() - zero)}));
    String negative = b.op("DequantizeLinear", List.of(b.op("Clip", List.of(b.op("QuantizeLinear",
        List.of(x, fine, z)), none, z)), fine, z));
    String positive = b.op("DequantizeLinear", List.of(b.op("Clip", List.of(b.op("QuantizeLinear",
        List.of(x, coarse, none)), none, top)), coarse, none));
    String twin = b.op("Add", List.of(negative, positive));
    return b.op("DequantizeLinear", List.of(b.op("QuantizeLinear", List.of(twin, fine, z)), fine, z));
  }

  /**
   * {@code q = clip(round(-k log2 (x / s)), 0, qmax)}; {@code s 2^(-q/k)}, or 0 at the top level ({@code k} levels per
   * octave, {@code s} the quantizer's scale, 1 unless calibrated lower).
   */
  private String log2(String x, Quantizer q) {
    float qmax = q.qmax();
    int k = q.levelsPerOctave();
    float s = q.scale(0);
    // An unscaled grid keeps the graph it always had, so plans made before calibrated top levels lower the same.
    String scaled = s == 1f ? x : b.op("Div", List.of(x, b.scalar(s)));
    String neg = b.op("Mul", List.of(b.op("Log", List.of(scaled)), b.scalar((float) (-k / Math.log(2)))));
    String level = b.op("Clip", List.of(b.op("Round", List.of(neg)), b.scalar(0f), b.scalar(qmax)));
    String value = b.op("Exp", List.of(b.op("Mul", List.of(level, b.scalar((float) (-Math.log(2) / k))))));
    if (s != 1f) {
      value = b.op("Mul", List.of(value, b.scalar(s)));
    }
    String top = b.op("Equal", List.of(level, b.scalar(qmax)));
    return b.op("Where", List.of(top, b.scalar(0f), value));
  }

  // ---- weights -----------------------------------------------------------------------------------------------

  private String weight(Tensor w, Quantizer q) {
    String base = w.name().replace('/', '_');
    int channels = q.scales().length;
    List<Long> scaleDims = List.of((long) channels);
    Attribute axis = Attribute.of("axis", (long) q.axis());
    if (simulating) {
      String scale = scale(base, w.name(), q.scales(), scaleDims);
      String zero = b.initializer(base + "_zero_point", Tensor.ofBytes("", DType.INT8, scaleDims, new byte[channels]));
      String levels = b.op("QuantizeLinear", List.of(w.name(), scale, zero), axis);
      // Weights use the narrow range [-(2^(b-1) - 1), 2^(b-1) - 1] at every width, as the deployed levels do.
      levels = clip(base, levels, q);
      return b.op("DequantizeLinear", List.of(levels, scale, zero), axis);
    }
    byte[] levels = levels(w, q);
    String scale = halfPrecision(base, q.scales());
    if (scale == null) {
      scale = scale(base, w.name(), q.scales(), scaleDims);
    }
    String stored;
    if (q.bits() == 4) {
      // int4 on disk; the Cast is constant-folded by ONNX Runtime, which then runs int8 kernels.
      int4Storage = true;
      String packed = b.initializer(base + "_int4", Tensor.ofBytes("", DType.INT4, w.dims(), pack4(levels)));
      stored = b.op("Cast", List.of(packed), Attribute.of("to", (long) DType.INT8.code()));
    } else {
      stored = b.initializer(base + "_int8", Tensor.ofBytes("", DType.INT8, w.dims(), levels));
    }
    return b.op("DequantizeLinear", List.of(stored, scale), axis);
  }

  /**
   * Weight scales stored as float16 behind a Cast (folded by ONNX Runtime at load time) when every scale is a normal
   * float16 value, which {@link ScaleInit#weight} ensures: half the bytes, the same numbers. Null otherwise.
   */
  private String halfPrecision(String base, float[] scales) {
    byte[] half = new byte[scales.length * 2];
    for (int c = 0; c < scales.length; c++) {
      short h = Float.floatToFloat16(scales[c]);
      if (Float.float16ToFloat(h) != scales[c] || Math.abs(scales[c]) < MIN_NORMAL_HALF) {
        return null;
      }
      half[2 * c] = (byte) h;
      half[2 * c + 1] = (byte) (h >> 8);
    }
    String stored = b.initializer(base + "_scale_f16", Tensor.ofBytes("", DType.FLOAT16,
        List.of((long) scales.length), half));
    return b.op("Cast", List.of(stored), Attribute.of("to", (long) DType.FLOAT.code()));
  }

  /** The smallest normal float16 value, 2^-14. */
  static final float MIN_NORMAL_HALF = 6.1035156e-5f;

  /** The weight's integer levels, row-major. */
  static byte[] levels(Tensor w, Quantizer q) {
    float[] v = w.floats();
    long[] dims = w.dims().stream().mapToLong(Long::longValue).toArray();
    int axis = q.axis();
    int inner = 1;
    for (int d = axis + 1; d < dims.length; d++) {
      inner *= (int) dims[d];
    }
    int channels = (int) dims[axis];
    byte[] out = new byte[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = (byte) q.quantize(v[i], (i / inner) % channels);
    }
    return out;
  }

  /** Two signed 4-bit values per byte, the first in the low nibble. */
  static byte[] pack4(byte[] levels) {
    byte[] packed = new byte[(levels.length + 1) / 2];
    for (int i = 0; i < levels.length; i++) {
      int nibble = levels[i] & 0x0f;
      packed[i / 2] |= (byte) ((i & 1) == 0 ? nibble : nibble << 4);
    }
    return packed;
  }

  // ---- scales ------------------------------------------------------------------------------------------------

  /** A constant scale (deploy) or a graph input (simulate). */
  private String scale(String base, String tensor, float[] values, List<Long> dims) {
    if (simulating) {
      String name = b.reserve(SCALE_INPUT_PREFIX + tensor);
      scaleInputs.add(Value.of(name, new TensorType(DType.FLOAT, dims.stream().map(dev.vitq.models.Dim::of)
          .toList())));
      return name;
    }
    return b.initializer(base + "_scale", Tensor.ofFloats("", dims, values));
  }
}
