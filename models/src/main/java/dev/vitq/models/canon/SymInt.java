package dev.vitq.models.canon;

/**
 * One integer of a shape or of a shape tensor as the exporter computes it: a known value, a multiple of a symbolic
 * dimension ({@code 3 * batch}), or unknown. Exporters build reshape targets from the batch size times a constant
 * (heads, tokens); keeping that one coefficient is what lets such a target fold to a constant with one {@code -1}.
 *
 * @param value the value, or the coefficient of {@code symbol}
 * @param symbol the symbolic dimension, null when the value is known, {@value #UNKNOWN_SYMBOL} when unknown
 */
record SymInt(long value, String symbol) {
  static final String UNKNOWN_SYMBOL = "?";
  static final SymInt UNKNOWN = new SymInt(0, UNKNOWN_SYMBOL);

  static SymInt of(long v) {
    return new SymInt(v, null);
  }

  static SymInt symbol(String name) {
    return new SymInt(1, name);
  }

  boolean isKnown() {
    return symbol == null;
  }

  boolean isUnknown() {
    return UNKNOWN_SYMBOL.equals(symbol);
  }

  SymInt times(SymInt o) {
    if (isKnown() && o.isKnown()) {
      return of(value * o.value);
    }
    if ((isKnown() && value == 0) || (o.isKnown() && o.value == 0)) {
      return of(0);
    }
    if (isKnown() && !o.isUnknown()) {
      return new SymInt(value * o.value, o.symbol);
    }
    if (o.isKnown() && !isUnknown()) {
      return new SymInt(value * o.value, symbol);
    }
    return UNKNOWN;
  }

  SymInt plus(SymInt o) {
    if (isKnown() && o.isKnown()) {
      return of(value + o.value);
    }
    if (o.isKnown() && o.value == 0) {
      return this;
    }
    if (isKnown() && value == 0) {
      return o;
    }
    if (!isUnknown() && symbol.equals(o.symbol)) {
      return value + o.value == 0 ? of(0) : new SymInt(value + o.value, symbol);
    }
    return UNKNOWN;
  }

  SymInt negate() {
    return isUnknown() ? UNKNOWN : new SymInt(-value, symbol);
  }

  /** Integer division as ONNX Runtime computes it on integers (truncating), exact on symbolic multiples only. */
  SymInt dividedBy(SymInt o) {
    if (!o.isKnown() || o.value == 0) {
      return isKnown() || isUnknown() || !symbol.equals(o.symbol) ? UNKNOWN : of(value / o.value);
    }
    if (isKnown()) {
      return of(value / o.value);
    }
    return !isUnknown() && value % o.value == 0 ? new SymInt(value / o.value, symbol) : UNKNOWN;
  }

  @Override
  public String toString() {
    return isKnown() ? Long.toString(value) : isUnknown() ? "?" : (value == 1 ? "" : value + "*") + symbol;
  }
}
