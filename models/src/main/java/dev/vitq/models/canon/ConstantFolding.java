package dev.vitq.models.canon;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Replaces what can be computed ahead of time by constants, keeping every value's name:
 *
 * <ul>
 *   <li>a node whose outputs shape inference knows element by element (the shape arithmetic of a fixed image size,
 *       constant scalars such as {@code Sqrt(scale)}) becomes initializers;
 *   <li>a layout or type change of a constant (Transpose, Reshape, Squeeze, Unsqueeze, Flatten, Cast, Gather,
 *       Identity of weights: torch.export leaves {@code Transpose(weight)} before MatMul) becomes an initializer;
 *   <li>{@code Constant} nodes become initializers;
 *   <li>a Reshape whose target is computed gets a constant target: entries equal to the input's dimension at the same
 *       position written as {@code 0} (copy), one other batch-dependent entry as {@code -1} (solve).
 * </ul>
 *
 * Graph outputs are never replaced. The values left without readers are removed by {@link DeadCode}.
 */
final class ConstantFolding {
  private static final Set<String> LAYOUT = Set.of("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
      "Identity", "Cast", "Gather");

  private ConstantFolding() {}

  static Graph apply(Graph g, Map<String, Facts> facts) {
    GraphIndex idx = GraphIndex.of(g);
    Set<String> outputs = new HashSet<>();
    g.outputs().forEach(v -> outputs.add(v.name()));
    GraphBuilder names = GraphBuilder.around(g);
    List<Node> nodes = new ArrayList<>();
    List<Tensor> added = new ArrayList<>();
    boolean changed = false;
    for (Node n : g.nodes()) {
      List<Tensor> folded = fold(n, idx, facts, outputs);
      if (folded != null) {
        added.addAll(folded);
        changed = true;
        continue;
      }
      Node reshaped = n.is("Reshape") ? constantTarget(n, idx, facts, names, added) : null;
      if (reshaped != null) {
        nodes.add(reshaped);
        changed = true;
        continue;
      }
      nodes.add(n);
    }
    if (!changed) {
      return g;
    }
    List<Tensor> inits = new ArrayList<>(g.initializers());
    inits.addAll(added);
    return g.withNodes(nodes).withInitializers(inits);
  }

  /** The node's outputs as constants, or null when it stays. */
  private static List<Tensor> fold(Node n, GraphIndex idx, Map<String, Facts> facts, Set<String> graphOutputs) {
    if (n.outputs().isEmpty() || n.outputs().stream().anyMatch(o -> o.isEmpty() || graphOutputs.contains(o))
        || n.attributes().stream().anyMatch(a -> a instanceof Attribute.GraphAttr || a instanceof Attribute.GraphsAttr)
        || !(n.domain().isEmpty() || n.domain().equals("ai.onnx"))) {
      return null;
    }
    if (n.is("Constant")) {
      return idx.constant(n.output()).map(t -> List.of(t.withName(n.output()))).orElse(null);
    }
    List<Tensor> out = new ArrayList<>();
    boolean known = true;
    for (String o : n.outputs()) {
      Facts f = facts.get(o);
      Tensor t = f == null ? null : fromFacts(o, f);
      if (t == null) {
        known = false;
        break;
      }
      out.add(t);
    }
    if (known) {
      return out;
    }
    if (n.outputs().size() == 1 && LAYOUT.contains(n.opType()) && idx.constant(n.input(0)).isPresent()) {
      Tensor t = moveConstant(n, idx.constant(n.input(0)).get(), idx, facts.get(n.output()));
      return t == null ? null : List.of(t);
    }
    return null;
  }

  /** A tensor holding what the facts know, when every element and dimension is known. */
  static Tensor fromFacts(String name, Facts f) {
    long[] dims = f.knownDims();
    if (f.dtype() == null || dims == null || !f.fullyKnown()) {
      return null;
    }
    List<Long> d = java.util.Arrays.stream(dims).boxed().toList();
    if (f.ints() != null) {
      if (!Facts.isInteger(f.dtype())) {
        return null;
      }
      return ofLongs(name, f.dtype(), d, f.knownLongs());
    }
    return Facts.isReal(f.dtype()) ? ofReals(name, f.dtype(), d, f.reals()) : null;
  }

  static Tensor ofLongs(String name, DType t, List<Long> dims, long[] v) {
    ByteBuffer b = ByteBuffer.allocate((int) t.byteSize(v.length)).order(ByteOrder.LITTLE_ENDIAN);
    for (long x : v) {
      switch (t) {
        case INT64, UINT64 -> b.putLong(x);
        case INT32, UINT32 -> b.putInt((int) x);
        case INT16, UINT16 -> b.putShort((short) x);
        case INT8, UINT8, BOOL -> b.put((byte) x);
        default -> throw new IllegalArgumentException("Not an integer type: " + t);
      }
    }
    b.flip();
    return new Tensor(name, t, dims, b, dev.vitq.models.Blob.EMPTY);
  }

  static Tensor ofReals(String name, DType t, List<Long> dims, double[] v) {
    ByteBuffer b = ByteBuffer.allocate((int) t.byteSize(v.length)).order(ByteOrder.LITTLE_ENDIAN);
    for (double x : v) {
      switch (t) {
        case FLOAT -> b.putFloat((float) x);
        case DOUBLE -> b.putDouble(x);
        case FLOAT16 -> b.putShort(Float.floatToFloat16((float) x));
        case BFLOAT16 -> b.putShort((short) (Float.floatToIntBits((float) x) >>> 16));
        default -> throw new IllegalArgumentException("Not a floating-point type: " + t);
      }
    }
    b.flip();
    return new Tensor(name, t, dims, b, dev.vitq.models.Blob.EMPTY);
  }

  /** A layout or type change applied to a constant of any size, or null when it cannot be done here. */
  private static Tensor moveConstant(Node n, Tensor x, GraphIndex idx, Facts outFacts) {
    if (x.dtype().isPacked() || x.dtype() == DType.STRING) {
      return null;
    }
    String name = n.output();
    switch (n.opType()) {
      case "Identity":
        return x.withName(name);
      case "Reshape", "Squeeze", "Unsqueeze", "Flatten": {
        long[] dims = outFacts == null ? null : outFacts.knownDims();
        if (dims == null || Tensor.elementCount(java.util.Arrays.stream(dims).boxed().toList()) != x.elementCount()) {
          return null;
        }
        return x.reshaped(java.util.Arrays.stream(dims).boxed().toList()).withName(name);
      }
      case "Transpose":
        return transpose(x, n.intsAttr("perm").orElse(null), name);
      case "Cast": {
        DType to;
        try {
          to = DType.of((int) n.intAttr("to", 1));
        } catch (dev.vitq.models.VitqException e) {
          return null;
        }
        if (Facts.isReal(to) && (Facts.isReal(x.dtype()) || Facts.isInteger(x.dtype()))) {
          float[] v = x.floats();
          double[] d = new double[v.length];
          for (int i = 0; i < v.length; i++) {
            d[i] = x.dtype() == DType.DOUBLE ? x.data().getDouble(i * 8) : v[i];
          }
          return ofReals(name, to, x.dims(), d);
        }
        if (Facts.isInteger(to) && Facts.isInteger(x.dtype())) {
          return ofLongs(name, to, x.dims(), x.longs());
        }
        return null;
      }
      case "Gather": {
        long[] indices = idx.longs(n.input(1)).orElse(null);
        Tensor it = idx.constant(n.input(1)).orElse(null);
        if (indices == null || it == null) {
          return null;
        }
        return gather(x, it.dims(), indices, (int) n.intAttr("axis", 0), name);
      }
      default:
        return null;
    }
  }

  private static Tensor transpose(Tensor x, List<Long> perm, String name) {
    int r = x.rank();
    int[] p = new int[r];
    for (int d = 0; d < r; d++) {
      p[d] = perm == null ? r - 1 - d : (int) (long) perm.get(d);
    }
    long[] dims = x.dims().stream().mapToLong(Long::longValue).toArray();
    long[] outDims = new long[r];
    for (int d = 0; d < r; d++) {
      outDims[d] = dims[p[d]];
    }
    long[] strides = ShapeMath.strides(dims);
    int es = x.dtype().bits() / 8;
    ByteBuffer src = x.data();
    int count = Math.toIntExact(x.elementCount());
    byte[] out = new byte[count * es];
    long[] k = new long[r];
    for (int i = 0; i < count; i++) {
      long s = 0;
      for (int d = 0; d < r; d++) {
        s += k[d] * strides[p[d]];
      }
      src.get((int) (s * es), out, i * es, es);
      for (int d = r - 1; d >= 0; d--) {
        if (++k[d] < outDims[d]) {
          break;
        }
        k[d] = 0;
      }
    }
    return Tensor.ofBytes(name, x.dtype(), java.util.Arrays.stream(outDims).boxed().toList(), out);
  }

  private static Tensor gather(Tensor x, List<Long> indexDims, long[] indices, int axisAttr, String name) {
    int r = x.rank();
    if (r == 0) {
      return null;
    }
    int axis = axisAttr < 0 ? axisAttr + r : axisAttr;
    long[] dims = x.dims().stream().mapToLong(Long::longValue).toArray();
    long outer = 1;
    for (int d = 0; d < axis; d++) {
      outer *= dims[d];
    }
    long inner = 1;
    for (int d = axis + 1; d < r; d++) {
      inner *= dims[d];
    }
    int es = x.dtype().bits() / 8;
    long slab = inner * es;
    ByteBuffer src = x.data();
    byte[] out = new byte[Math.toIntExact(outer * indices.length * slab)];
    int k = 0;
    for (long o = 0; o < outer; o++) {
      for (long i : indices) {
        long j = i < 0 ? i + dims[axis] : i;
        if (j < 0 || j >= dims[axis]) {
          return null;
        }
        src.get((int) ((o * dims[axis] + j) * slab), out, k, (int) slab);
        k += (int) slab;
      }
    }
    List<Long> outDims = new ArrayList<>(x.dims().subList(0, axis));
    outDims.addAll(indexDims);
    outDims.addAll(x.dims().subList(axis + 1, r));
    return Tensor.ofBytes(name, x.dtype(), outDims, out);
  }

  /**
   * A Reshape whose target is computed but known up to the batch size, with a constant target instead: entries
   * equal to the input's dimension at the same position become {@code 0} (copy), at most one other unknown entry
   * becomes {@code -1}. Null when the target is constant already or cannot be written so.
   */
  private static Node constantTarget(Node n, GraphIndex idx, Map<String, Facts> facts, GraphBuilder names,
      List<Tensor> added) {
    if (idx.isConstant(n.input(1)) || n.inputs().size() < 2) {
      return null;
    }
    Facts target = facts.get(n.input(1));
    Facts x = facts.get(n.input(0));
    if (target == null || target.ints() == null || x == null) {
      return null;
    }
    boolean allowZero = n.intAttr("allowzero", 0) != 0;
    SymInt[] t = target.ints();
    long[] out = new long[t.length];
    int solved = -1;
    for (int d = 0; d < t.length; d++) {
      // An entry equal to the input's dimension there is written as a copy, even when known: the graph then keeps
      // working when fewer tokens reach it (a split's reduced boundary), as the computed target did.
      if (!allowZero && x.hasRank() && d < x.rank() && x.shape().get(d).equals(t[d]) && !t[d].isUnknown()
          && !(t[d].isKnown() && t[d].value() <= 0)) {
        out[d] = 0;
        continue;
      }
      if (t[d].isKnown()) {
        out[d] = t[d].value();
        if (out[d] == -1) {
          if (solved >= 0) {
            return null;
          }
          solved = d;
        }
        continue;
      }
      if (solved < 0) {
        solved = d;
        out[d] = -1;
      } else {
        return null;
      }
    }
    String name = names.fresh(n.output() + "_target");
    added.add(Tensor.ofLongs(name, List.of((long) out.length), out));
    return n.withInput(1, name);
  }
}
