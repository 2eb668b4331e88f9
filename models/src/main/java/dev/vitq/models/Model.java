package dev.vitq.models;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * An ONNX model: the main graph with the model-level fields around it.
 *
 * @param irVersion the ONNX IR version
 * @param opsets operator set imports, in file order
 * @param producerName the producing tool
 * @param producerVersion its version
 * @param domain the model's domain
 * @param modelVersion the model's version
 * @param docString the model's documentation
 * @param metadata {@code metadata_props}, in file order
 * @param graph the main graph
 * @param extras the rest of the ONNX {@code ModelProto} (functions, training info), serialized
 */
public record Model(
    long irVersion,
    List<OpsetId> opsets,
    String producerName,
    String producerVersion,
    String domain,
    long modelVersion,
    String docString,
    List<Metadata> metadata,
    Graph graph,
    Blob extras) {

  public Model {
    opsets = List.copyOf(opsets);
    Objects.requireNonNull(producerName, "producerName");
    Objects.requireNonNull(producerVersion, "producerVersion");
    Objects.requireNonNull(domain, "domain");
    Objects.requireNonNull(docString, "docString");
    metadata = List.copyOf(metadata);
    Objects.requireNonNull(graph, "graph");
    Objects.requireNonNull(extras, "extras");
  }

  /** The version imported for {@code opsetDomain} ("" or "ai.onnx" for the default domain), or 0 when absent. */
  public long opset(String opsetDomain) {
    String d = opsetDomain.equals("ai.onnx") ? "" : opsetDomain;
    for (OpsetId o : opsets) {
      if ((o.domain().equals("ai.onnx") ? "" : o.domain()).equals(d)) {
        return o.version();
      }
    }
    return 0;
  }

  /** The value of a metadata entry, if present. */
  public Optional<String> metadata(String key) {
    return metadata.stream().filter(m -> m.key().equals(key)).map(Metadata::value).findFirst();
  }

  public Model withGraph(Graph newGraph) {
    return new Model(irVersion, opsets, producerName, producerVersion, domain, modelVersion, docString, metadata,
        newGraph, extras);
  }

  /** This model with the domain's opset import set to {@code version}, added when missing. */
  public Model withOpset(String opsetDomain, long version) {
    List<OpsetId> next = new ArrayList<>();
    boolean found = false;
    for (OpsetId o : opsets) {
      if (o.domain().equals(opsetDomain)) {
        next.add(new OpsetId(opsetDomain, version));
        found = true;
      } else {
        next.add(o);
      }
    }
    if (!found) {
      next.add(new OpsetId(opsetDomain, version));
    }
    return new Model(irVersion, next, producerName, producerVersion, domain, modelVersion, docString, metadata, graph,
        extras);
  }

  /** This model with the metadata entry set, replacing an entry of the same key. */
  public Model withMetadata(String key, String value) {
    List<Metadata> next = new ArrayList<>(metadata);
    next.removeIf(m -> m.key().equals(key));
    next.add(new Metadata(key, value));
    return new Model(irVersion, opsets, producerName, producerVersion, domain, modelVersion, docString, next, graph,
        extras);
  }

  /** This model stamped with another producer. */
  public Model withProducer(String name, String version) {
    return new Model(irVersion, opsets, name, version, domain, modelVersion, docString, metadata, graph, extras);
  }

  /** This model with another IR version. */
  public Model withIrVersion(long version) {
    return new Model(version, opsets, producerName, producerVersion, domain, modelVersion, docString, metadata, graph,
        extras);
  }
}
