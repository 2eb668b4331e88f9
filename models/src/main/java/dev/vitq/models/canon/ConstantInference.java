package dev.vitq.models.canon;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/** Values made from a stored tensor, an attribute or scalars: Constant, ConstantOfShape and Range. */
final class ConstantInference {
  private ConstantInference() {}

  static Facts ofTensor(Tensor t) {
    List<SymInt> shape = t.dims().stream().map(SymInt::of).toList();
    long n = t.elementCount();
    if (n < 0 || n > ShapeMath.MAX_CONTENT || t.dtype() == DType.STRING) {
      return Facts.of(t.dtype(), shape);
    }
    if (Facts.isInteger(t.dtype())) {
      long[] v = t.longs();
      SymInt[] ints = new SymInt[v.length];
      for (int i = 0; i < v.length; i++) {
        ints[i] = SymInt.of(v[i]);
      }
      return new Facts(t.dtype(), shape, ints, null);
    }
    if (Facts.isReal(t.dtype())) {
      float[] v = t.floats();
      double[] reals = new double[v.length];
      for (int i = 0; i < v.length; i++) {
        reals[i] = t.dtype() == DType.DOUBLE ? t.data().getDouble(i * 8) : v[i];
      }
      return new Facts(t.dtype(), shape, null, reals);
    }
    return Facts.of(t.dtype(), shape);
  }

  static Facts constantOfShape(KnownFacts known, Node n) {
    Facts shapeFacts = known.get(n.input(0));
    DType dtype = DType.FLOAT;
    double fill = 0;
    Optional<Attribute> value = n.attribute("value");
    if (value.isPresent() && value.get() instanceof Attribute.TensorAttr t) {
      dtype = t.value().dtype();
      fill = Facts.isInteger(dtype) ? t.value().longs()[0] : t.value().floats()[0];
    }
    if (shapeFacts.ints() == null) {
      return Facts.of(dtype, shapeFacts.knownDims() != null && shapeFacts.rank() == 1
          ? ShapeMath.unknownDims((int) shapeFacts.knownDims()[0]) : null);
    }
    List<SymInt> shape = Arrays.asList(shapeFacts.ints());
    long count = ShapeMath.knownCount(shape);
    if (count < 0 || count > ShapeMath.MAX_CONTENT) {
      return Facts.of(dtype, shape);
    }
    if (Facts.isInteger(dtype)) {
      SymInt[] v = new SymInt[(int) count];
      Arrays.fill(v, SymInt.of((long) fill));
      return new Facts(dtype, shape, v, null);
    }
    double[] v = new double[(int) count];
    Arrays.fill(v, fill);
    return new Facts(dtype, shape, null, v);
  }

  static Facts range(KnownFacts known, Node n) {
    Facts start = known.get(n.input(0));
    Facts limit = known.get(n.input(1));
    Facts delta = known.get(n.input(2));
    DType dtype = start.dtype();
    if (dtype == null) {
      return Facts.UNKNOWN;
    }
    double[] s = scalarValue(start);
    double[] l = scalarValue(limit);
    double[] d = scalarValue(delta);
    if (s == null || l == null || d == null || d[0] == 0) {
      return Facts.of(dtype, List.of(SymInt.UNKNOWN));
    }
    long count = Math.max(0, (long) Math.ceil((l[0] - s[0]) / d[0]));
    List<SymInt> shape = List.of(SymInt.of(count));
    if (count > ShapeMath.MAX_CONTENT) {
      return Facts.of(dtype, shape);
    }
    if (Facts.isInteger(dtype)) {
      SymInt[] v = new SymInt[(int) count];
      for (int i = 0; i < count; i++) {
        v[i] = SymInt.of((long) (s[0] + i * d[0]));
      }
      return new Facts(dtype, shape, v, null);
    }
    double[] v = new double[(int) count];
    for (int i = 0; i < count; i++) {
      v[i] = s[0] + i * d[0];
    }
    return new Facts(dtype, shape, null, ShapeMath.round(v, dtype));
  }

  private static double[] scalarValue(Facts f) {
    if (f.reals() != null && f.reals().length == 1) {
      return f.reals();
    }
    long[] l = f.knownLongs();
    return l != null && l.length == 1 ? new double[] {l[0]} : null;
  }
}
