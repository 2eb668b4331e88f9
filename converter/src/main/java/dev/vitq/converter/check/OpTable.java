package dev.vitq.converter.check;

import dev.vitq.converter.check.OpRule.Condition;
import dev.vitq.models.DType;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * What one execution provider takes: its operators with their conditions, and the facts that hold for all of them
 * (static shapes, a rank limit, the integer types of its quantized units). {@link ProviderTables} writes one per
 * provider.
 *
 * @param staticShapes whether every input of a node must have a fixed shape
 * @param maxRank the highest rank of an input the provider takes (Integer.MAX_VALUE: no limit)
 * @param activationTypes integer types of quantized activations (QuantizeLinear outputs, DequantizeLinear inputs)
 * @param weightTypes integer types of quantized constants (weights behind a DequantizeLinear)
 * @param domainBlind whether the provider looks operators up by name alone, so a contrib operator of a listed name
 *     (com.microsoft Gelu, say) is taken too
 * @param qdqUnits whether the provider is asked about DequantizeLinear → op → QuantizeLinear groups as units (CoreML
 *     is asked about each node alone)
 * @param rules the operators, by {@code domain:op}
 */
record OpTable(boolean staticShapes, int maxRank, Set<DType> activationTypes, Set<DType> weightTypes,
    boolean domainBlind, boolean qdqUnits, Map<String, OpRule> rules) {
  static final String ONNX = "ai.onnx";
  static final String MS = "com.microsoft";

  OpTable {
    activationTypes = Set.copyOf(activationTypes);
    weightTypes = Set.copyOf(weightTypes);
    rules = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rules));
  }

  /** The rule for a node's operator, if the provider has one. */
  Optional<OpRule> rule(String domain, String op) {
    String d = domain.isEmpty() ? ONNX : domain;
    OpRule r = rules.get(d + ":" + op);
    if (r == null && domainBlind) {
      r = rules.get(ONNX + ":" + op);
    }
    return Optional.ofNullable(r);
  }

  /** A condition: the sentence the report gives when it fails, and the test. */
  static Condition when(String text, Predicate<NodeView> test) {
    return new Condition(text, test);
  }

  /** Starts a table whose operators take {@code types} on their data input unless a row says otherwise. */
  static Builder builder(Set<DType> types) {
    return new Builder(types);
  }

  /** Collects a table's rows in the order the table reads. */
  static final class Builder {
    private final Set<DType> defaultTypes;
    private final Map<String, OpRule> rules = new LinkedHashMap<>();
    private boolean staticShapes;
    private int maxRank = Integer.MAX_VALUE;
    private Set<DType> activations = Set.of();
    private Set<DType> weights = Set.of();
    private boolean domainBlind;
    private boolean qdqUnits = true;

    private Builder(Set<DType> defaultTypes) {
      this.defaultTypes = defaultTypes;
    }

    Builder staticShapes() {
      staticShapes = true;
      return this;
    }

    Builder maxRank(int rank) {
      maxRank = rank;
      return this;
    }

    Builder quantized(Set<DType> activationTypes, Set<DType> weightTypes) {
      activations = activationTypes;
      weights = weightTypes;
      return this;
    }

    Builder nodeByNode() {
      qdqUnits = false;
      return this;
    }

    Builder domainBlind() {
      domainBlind = true;
      return this;
    }

    /** An operator ({@code op} or {@code domain:op}) on float inputs, with its conditions. */
    Builder op(String name, Condition... conditions) {
      return add(name, defaultTypes, false, conditions);
    }

    /** An operator on the given data types, with its conditions. */
    Builder op(String name, Set<DType> types, Condition... conditions) {
      return add(name, types, false, conditions);
    }

    /** An operator that also runs as a quantized DequantizeLinear → op → QuantizeLinear unit. */
    Builder qdq(String name, Condition... conditions) {
      return add(name, defaultTypes, true, conditions);
    }

    /** A quantizable operator whose units take other weight types than the table's. */
    Builder qdq(String name, Set<DType> weightTypes, Condition... conditions) {
      add(name, defaultTypes, true, conditions);
      String key = rules.keySet().stream().reduce((a, b) -> b).orElseThrow();
      OpRule r = rules.get(key);
      rules.put(key, new OpRule(r.domain(), r.op(), r.types(), true, weightTypes, r.conditions()));
      return this;
    }

    /** Several operators with no conditions. */
    Builder ops(String... names) {
      for (String n : names) {
        op(n);
      }
      return this;
    }

    /** Several operators with no conditions that also run as quantized units. */
    Builder qdqOps(String... names) {
      for (String n : names) {
        qdq(n);
      }
      return this;
    }

    private Builder add(String name, Set<DType> types, boolean qdq, Condition... conditions) {
      int colon = name.indexOf(':');
      String domain = colon < 0 ? ONNX : name.substring(0, colon);
      String op = name.substring(colon + 1);
      OpRule r = new OpRule(domain, op, types, qdq, Set.of(), List.of(conditions));
      if (rules.put(r.key(), r) != null) {
        throw new IllegalStateException("Operator " + r.key() + " is in the table twice");
      }
      return this;
    }

    OpTable build() {
      return new OpTable(staticShapes, maxRank, activations, weights, domainBlind, qdqUnits, rules);
    }
  }
}
