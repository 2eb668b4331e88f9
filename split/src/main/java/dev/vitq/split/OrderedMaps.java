package dev.vitq.split;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * JSON objects of the manifest with their keys in the order written. {@code Map.of} iterates in an order salted per
 * JVM run, so a manifest built from it listed the same keys differently from one export to the next.
 */
final class OrderedMaps {
  private OrderedMaps() {}

  /** A map of {@code key, value, key, value, ...} that iterates in that order. */
  static Map<String, Object> of(Object... keysAndValues) {
    if (keysAndValues.length % 2 != 0) {
      throw new IllegalArgumentException("Keys and values come in pairs, got " + keysAndValues.length + " items");
    }
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < keysAndValues.length; i += 2) {
      m.put((String) keysAndValues[i], keysAndValues[i + 1]);
    }
    return m;
  }
}
