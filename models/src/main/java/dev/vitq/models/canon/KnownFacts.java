package dev.vitq.models.canon;

import dev.vitq.models.Node;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The facts shape inference has found so far, by value name, and the lookups the operator families make in them
 * (a node's inputs, its axes or starts given as an input). Apart from the dispatcher so the families need not call
 * back into it.
 */
final class KnownFacts {
  private final Map<String, Facts> facts = new HashMap<>();

  /** The facts by value name (the live map, not a copy). */
  Map<String, Facts> asMap() {
    return facts;
  }

  void put(String name, Facts f) {
    facts.put(name, f);
  }

  /** The facts of a value; unknown for an omitted optional input (empty name) or a value not seen yet. */
  Facts get(String name) {
    if (name.isEmpty()) {
      return Facts.UNKNOWN;
    }
    return facts.getOrDefault(name, Facts.UNKNOWN);
  }

  /** The known integers of an input (axes, starts, a target shape), or null. */
  long[] longs(Node n, int input) {
    return input < n.inputs().size() ? get(n.input(input)).knownLongs() : null;
  }

  /** An axes-like list from the attribute (older opsets) or else the input (newer opsets); null when unknown. */
  long[] attrOrInput(Node n, String attr, int input) {
    Optional<List<Long>> a = n.intsAttr(attr);
    if (a.isPresent()) {
      return a.get().stream().mapToLong(Long::longValue).toArray();
    }
    if (input < n.inputs().size() && !n.input(input).isEmpty()) {
      return longs(n, input);
    }
    return new long[0];
  }

  /** The facts of each of a node's inputs, in order. */
  List<Facts> inputs(Node n) {
    List<Facts> in = new ArrayList<>();
    for (String v : n.inputs()) {
      in.add(get(v));
    }
    return in;
  }
}
