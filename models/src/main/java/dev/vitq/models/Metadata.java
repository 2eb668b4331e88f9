package dev.vitq.models;

import java.util.Objects;

/**
 * One {@code metadata_props} entry of a model.
 *
 * @param key the key
 * @param value the value
 */
public record Metadata(String key, String value) {
  public Metadata {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(value, "value");
  }
}
