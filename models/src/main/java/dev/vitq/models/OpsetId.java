package dev.vitq.models;

import java.util.Objects;

/**
 * An operator set import.
 *
 * @param domain the domain; empty for the default ONNX domain
 * @param version the operator set version
 */
public record OpsetId(String domain, long version) {
  public OpsetId {
    Objects.requireNonNull(domain, "domain");
  }
}
