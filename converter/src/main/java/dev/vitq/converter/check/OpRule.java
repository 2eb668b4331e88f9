package dev.vitq.converter.check;

import dev.vitq.models.DType;
import java.util.List;
import java.util.Set;

/**
 * One row of a provider's table: an operator it takes, the element types it takes it with, and the conditions on
 * shapes, constants and attributes under which it does.
 *
 * @param domain the operator's domain ({@code ai.onnx} for the default one)
 * @param op the operator
 * @param types element types of the data input (input 0) it takes on float (not QDQ) nodes; empty: any
 * @param qdq whether a DequantizeLinear → op → QuantizeLinear unit of it runs quantized on the provider
 * @param qdqWeights integer types of constant inputs this operator's units take; empty: the table's
 * @param conditions what else must hold, each with the sentence that says what failed
 */
record OpRule(String domain, String op, Set<DType> types, boolean qdq, Set<DType> qdqWeights,
    List<Condition> conditions) {
  OpRule {
    types = Set.copyOf(types);
    qdqWeights = Set.copyOf(qdqWeights);
    conditions = List.copyOf(conditions);
  }

  /** The table key, {@code domain:op}. */
  String key() {
    return domain + ":" + op;
  }

  /**
   * A condition a node must meet.
   *
   * @param text what the provider requires, as the report says it (e.g. "weights must be constant")
   * @param test whether a node meets it
   */
  record Condition(String text, java.util.function.Predicate<NodeView> test) {}
}
