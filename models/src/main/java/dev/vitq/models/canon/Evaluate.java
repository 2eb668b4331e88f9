package dev.vitq.models.canon;

import dev.vitq.models.DType;
import dev.vitq.models.Node;
import java.util.List;

/**
 * Evaluates elementwise operators on small tensors whose elements shape inference knows: integers symbolically
 * (a batch size times a constant stays that), floating-point values rounded to their type as ONNX Runtime would.
 * Null (or unknown elements) where an operator or a value is outside what it evaluates.
 */
final class Evaluate {
  private Evaluate() {}

  static Facts elementwise(Node n, List<Facts> in, List<int[]> from, int count, DType dtype, List<SymInt> shape) {
    String op = n.opType();
    if (op.equals("Where")) {
      Facts c = in.get(0);
      Facts x = in.get(1);
      Facts y = in.get(2);
      if (c.ints() == null) {
        return Facts.of(dtype, shape);
      }
      if (x.ints() != null && y.ints() != null) {
        SymInt[] out = new SymInt[count];
        for (int i = 0; i < count; i++) {
          SymInt cond = c.ints()[from.get(0)[i]];
          out[i] = !cond.isKnown() ? SymInt.UNKNOWN : cond.value() != 0 ? x.ints()[from.get(1)[i]]
              : y.ints()[from.get(2)[i]];
        }
        return new Facts(dtype, shape, out, null);
      }
      if (x.reals() != null && y.reals() != null && c.fullyKnown()) {
        double[] out = new double[count];
        for (int i = 0; i < count; i++) {
          out[i] = c.ints()[from.get(0)[i]].value() != 0 ? x.reals()[from.get(1)[i]] : y.reals()[from.get(2)[i]];
        }
        return new Facts(dtype, shape, null, out);
      }
      return Facts.of(dtype, shape);
    }
    boolean allInts = in.stream().allMatch(f -> f.ints() != null);
    boolean allReals = in.stream().allMatch(f -> f.reals() != null);
    if (allInts) {
      SymInt[] out = new SymInt[count];
      for (int i = 0; i < count; i++) {
        SymInt acc = in.get(0).ints()[from.get(0)[i]];
        for (int k = 1; k < in.size(); k++) {
          acc = ints(op, acc, in.get(k).ints()[from.get(k)[i]]);
          if (acc == null) {
            return Facts.of(dtype, shape);
          }
        }
        out[i] = acc;
      }
      return new Facts(dtype, shape, out, null);
    }
    if (allReals) {
      boolean bool = dtype == DType.BOOL;
      double[] out = new double[count];
      SymInt[] flags = bool ? new SymInt[count] : null;
      for (int i = 0; i < count; i++) {
        double acc = in.get(0).reals()[from.get(0)[i]];
        for (int k = 1; k < in.size(); k++) {
          Double r = reals(op, acc, in.get(k).reals()[from.get(k)[i]]);
          if (r == null) {
            return Facts.of(dtype, shape);
          }
          acc = r;
        }
        if (bool) {
          flags[i] = SymInt.of(acc != 0 ? 1 : 0);
        } else {
          out[i] = acc;
        }
      }
      return bool ? new Facts(dtype, shape, flags, null)
          : new Facts(dtype, shape, null, ShapeMath.round(out, dtype));
    }
    return Facts.of(dtype, shape);
  }

  /** One integer operation; null when the operator is not evaluated here. */
  private static SymInt ints(String op, SymInt a, SymInt b) {
    return switch (op) {
      case "Add", "Sum" -> a.plus(b);
      case "Sub" -> a.plus(b.negate());
      case "Mul" -> a.times(b);
      case "Div" -> a.dividedBy(b);
      case "Mod" -> a.isKnown() && b.isKnown() && b.value() != 0 ? SymInt.of(Math.floorMod(a.value(), b.value()))
          : SymInt.UNKNOWN;
      case "Max" -> a.isKnown() && b.isKnown() ? SymInt.of(Math.max(a.value(), b.value())) : SymInt.UNKNOWN;
      case "Min" -> a.isKnown() && b.isKnown() ? SymInt.of(Math.min(a.value(), b.value())) : SymInt.UNKNOWN;
      case "Equal" -> a.equals(b) && !a.isUnknown() ? SymInt.of(1) : compare(a, b, Long::equals);
      case "Less" -> compare(a, b, (x, y) -> x < y);
      case "Greater" -> compare(a, b, (x, y) -> x > y);
      case "LessOrEqual" -> compare(a, b, (x, y) -> x <= y);
      case "GreaterOrEqual" -> compare(a, b, (x, y) -> x >= y);
      case "And" -> a.isKnown() && b.isKnown() ? SymInt.of(a.value() != 0 && b.value() != 0 ? 1 : 0) : SymInt.UNKNOWN;
      case "Or" -> a.isKnown() && b.isKnown() ? SymInt.of(a.value() != 0 || b.value() != 0 ? 1 : 0) : SymInt.UNKNOWN;
      case "Xor" -> a.isKnown() && b.isKnown() ? SymInt.of((a.value() != 0) != (b.value() != 0) ? 1 : 0)
          : SymInt.UNKNOWN;
      case "Pow" -> a.isKnown() && b.isKnown() && b.value() >= 0 && b.value() < 64
          ? SymInt.of(power(a.value(), b.value())) : SymInt.UNKNOWN;
      default -> null;
    };
  }

  /**
   * A comparison: of known values, or of a symbolic dimension (a positive size) against a known constant where
   * exporters write such guards ({@code batch == -1} is false, whatever the batch).
   */
  private static SymInt compare(SymInt a, SymInt b, java.util.function.BiPredicate<Long, Long> test) {
    if (a.isKnown() && b.isKnown()) {
      return SymInt.of(test.test(a.value(), b.value()) ? 1 : 0);
    }
    // A symbolic dimension is at least 1 times a positive coefficient: it never equals 0 or a negative constant.
    SymInt sym = a.isKnown() ? b : a;
    SymInt known = a.isKnown() ? a : b;
    if (!sym.isUnknown() && known.isKnown() && sym.value() > 0 && known.value() <= 0) {
      long stand = sym.value(); // any positive value behaves the same against a non-positive constant
      return SymInt.of((a.isKnown() ? test.test(known.value(), stand) : test.test(stand, known.value())) ? 1 : 0);
    }
    return SymInt.UNKNOWN;
  }

  private static long power(long base, long exp) {
    long r = 1;
    for (long i = 0; i < exp; i++) {
      r *= base;
    }
    return r;
  }

  /** One floating-point operation (comparisons give 1 or 0); null when not evaluated here. */
  private static Double reals(String op, double a, double b) {
    return switch (op) {
      case "Add", "Sum" -> a + b;
      case "Sub" -> a - b;
      case "Mul" -> a * b;
      case "Div" -> a / b;
      case "Pow" -> Math.pow(a, b);
      case "Max" -> Math.max(a, b);
      case "Min" -> Math.min(a, b);
      case "Equal" -> a == b ? 1.0 : 0.0;
      case "Less" -> a < b ? 1.0 : 0.0;
      case "Greater" -> a > b ? 1.0 : 0.0;
      case "LessOrEqual" -> a <= b ? 1.0 : 0.0;
      case "GreaterOrEqual" -> a >= b ? 1.0 : 0.0;
      default -> null;
    };
  }

  static Facts unary(Node n, Facts x, DType dtype) {
    String op = n.opType();
    if (x.ints() != null) {
      SymInt[] out = new SymInt[x.ints().length];
      for (int i = 0; i < out.length; i++) {
        SymInt v = x.ints()[i];
        out[i] = switch (op) {
          case "Neg" -> v.negate();
          case "Abs" -> v.isKnown() ? SymInt.of(Math.abs(v.value())) : v.isUnknown() ? v : new SymInt(
              Math.abs(v.value()), v.symbol());
          case "Not" -> v.isKnown() ? SymInt.of(v.value() != 0 ? 0 : 1) : SymInt.UNKNOWN;
          case "Relu" -> v.isKnown() ? SymInt.of(Math.max(0, v.value())) : SymInt.UNKNOWN;
          case "Sign" -> v.isKnown() ? SymInt.of(Long.signum(v.value())) : SymInt.UNKNOWN;
          case "IsNaN", "IsInf" -> SymInt.of(0);
          default -> null;
        };
        if (out[i] == null) {
          return null;
        }
      }
      return new Facts(dtype, x.shape(), out, null);
    }
    if (x.reals() == null) {
      return null;
    }
    double[] out = new double[x.reals().length];
    boolean bool = dtype == DType.BOOL;
    for (int i = 0; i < out.length; i++) {
      double v = x.reals()[i];
      Double r = switch (op) {
        case "Sqrt" -> Math.sqrt(v);
        case "Reciprocal" -> 1 / v;
        case "Neg" -> -v;
        case "Abs" -> Math.abs(v);
        case "Exp" -> Math.exp(v);
        case "Log" -> Math.log(v);
        case "Floor" -> Math.floor(v);
        case "Ceil" -> Math.ceil(v);
        case "Round" -> Math.rint(v);
        case "Relu" -> Math.max(0, v);
        case "Sigmoid" -> 1 / (1 + Math.exp(-v));
        case "Tanh" -> Math.tanh(v);
        case "Sin" -> Math.sin(v);
        case "Cos" -> Math.cos(v);
        case "Sign" -> Math.signum(v);
        case "IsNaN" -> Double.isNaN(v) ? 1.0 : 0.0;
        case "IsInf" -> Double.isInfinite(v) ? 1.0 : 0.0;
        default -> null;
      };
      if (r == null) {
        return null;
      }
      out[i] = r;
    }
    if (bool) {
      SymInt[] flags = new SymInt[out.length];
      for (int i = 0; i < out.length; i++) {
        flags[i] = SymInt.of(out[i] != 0 ? 1 : 0);
      }
      return new Facts(dtype, x.shape(), flags, null);
    }
    return new Facts(dtype, x.shape(), null, ShapeMath.round(out, dtype));
  }
}
