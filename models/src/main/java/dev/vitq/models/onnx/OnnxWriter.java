package dev.vitq.models.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import dev.vitq.models.Attribute;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.Metadata;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes IR models as ONNX files.
 *
 * <p>The writer is the reader's inverse: each record's {@code extras} is parsed back and its modelled fields set on
 * top, so reading then writing keeps every field, and writing the same model twice gives the same bytes. Files are
 * written atomically. Weights go into a {@code .data} file beside the model when asked or when the model would come
 * near protobuf's 2 GiB limit.
 */
public final class OnnxWriter {
  /** Where tensor data goes. */
  public enum Placement {
    /** Inside the model file. */
    EMBEDDED,
    /** Tensors of 1 KiB or more in {@code <model>.data} beside the model file. */
    EXTERNAL,
    /** Embedded unless the weights come near protobuf's 2 GiB limit. */
    AUTO
  }

  /** Weights past this total go external under {@link Placement#AUTO}, leaving room for the graph itself. */
  static final long AUTO_EXTERNAL_BYTES = 1_800_000_000L;
  private static final int EXTERNAL_MIN_BYTES = 1024;
  /** Page-aligned offsets let ONNX Runtime map external tensors instead of copying them. */
  private static final int EXTERNAL_ALIGNMENT = 4096;

  private OnnxWriter() {}

  /** Writes a model with {@link Placement#AUTO}. */
  public static void write(Model model, Path file) throws VitqException {
    write(model, file, Placement.AUTO);
  }

  /**
   * Writes a model.
   *
   * @throws VitqException if the file cannot be written or an embedded model would pass 2 GiB
   */
  public static void write(Model model, Path file, Placement placement) throws VitqException {
    boolean external =
        placement == Placement.EXTERNAL
            || (placement == Placement.AUTO && weightBytes(model.graph()) > AUTO_EXTERNAL_BYTES);
    if (!external) {
      byte[] bytes = toBytes(model);
      AtomicFile.write(file, bytes);
      return;
    }
    String dataName = file.getFileName() + ".data";
    Path dataFile = file.resolveSibling(dataName);
    Path dataTmp = AtomicFile.temporarySibling(dataFile);
    ModelProto proto;
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(dataTmp), 1 << 20);
        WritableByteChannel channel = Channels.newChannel(out)) {
      ExternalSink sink = new ExternalSink(dataName, channel);
      proto = new Encoder(sink).model(model);
    } catch (IOException | java.io.UncheckedIOException e) {
      AtomicFile.deleteQuietly(dataTmp);
      throw new VitqException("Cannot write " + dataFile + ": " + e.getMessage() + ".", e);
    }
    try {
      AtomicFile.moveIntoPlace(dataTmp, dataFile);
    } catch (IOException e) {
      AtomicFile.deleteQuietly(dataTmp);
      throw new VitqException("Cannot write " + dataFile + ": " + e.getMessage() + ".", e);
    }
    try {
      AtomicFile.write(file, proto::writeTo);
    } catch (VitqException e) {
      AtomicFile.deleteQuietly(dataFile);
      throw e;
    }
  }

  /**
   * The model serialized with all data embedded.
   *
   * @throws VitqException if it would pass protobuf's 2 GiB limit
   */
  public static byte[] toBytes(Model model) throws VitqException {
    if (weightBytes(model.graph()) >= Integer.MAX_VALUE) {
      throw new VitqException("The model's weights pass 2 GiB and cannot be embedded; write them as external data.");
    }
    ModelProto proto = new Encoder(null).model(model);
    if (proto.getSerializedSize() < 0) {
      throw new VitqException("The model passes 2 GiB and cannot be embedded; write its weights as external data.");
    }
    return proto.toByteArray();
  }

  /** The model as a protobuf message with all data embedded. */
  public static ModelProto toProto(Model model) {
    return new Encoder(null).model(model);
  }

  private static long weightBytes(Graph g) {
    long total = 0;
    for (Tensor t : g.initializers()) {
      total += t.data().remaining();
    }
    return total;
  }

  /** Appends tensors to the external data file, page-aligned. */
  private static final class ExternalSink {
    private final String location;
    private final WritableByteChannel channel;
    private long position;

    ExternalSink(String location, WritableByteChannel channel) {
      this.location = location;
      this.channel = channel;
    }

    void append(Tensor t, TensorProto.Builder b) throws IOException {
      long pad = (EXTERNAL_ALIGNMENT - position % EXTERNAL_ALIGNMENT) % EXTERNAL_ALIGNMENT;
      if (pad > 0) {
        channel.write(java.nio.ByteBuffer.allocate((int) pad));
        position += pad;
      }
      java.nio.ByteBuffer data = t.data();
      long length = data.remaining();
      while (data.hasRemaining()) {
        channel.write(data);
      }
      b.setDataLocation(TensorProto.DataLocation.EXTERNAL)
          .addExternalData(entry("location", location))
          .addExternalData(entry("offset", Long.toString(position)))
          .addExternalData(entry("length", Long.toString(length)));
      position += length;
    }
  }

  /** IR to protobuf; with a sink, large initializers of the main graph go to external data. */
  private static final class Encoder {
    private final ExternalSink sink;

    Encoder(ExternalSink sink) {
      this.sink = sink;
    }

    ModelProto model(Model m) {
      ModelProto.Builder b = parse(m.extras(), ModelProto.newBuilder(), ModelProto.parser());
      b.setIrVersion(m.irVersion());
      for (OpsetId o : m.opsets()) {
        OperatorSetIdProto.Builder ob = OperatorSetIdProto.newBuilder().setVersion(o.version());
        setIfPresent(o.domain(), ob::setDomain);
        b.addOpsetImport(ob);
      }
      setIfPresent(m.producerName(), b::setProducerName);
      setIfPresent(m.producerVersion(), b::setProducerVersion);
      setIfPresent(m.domain(), b::setDomain);
      if (m.modelVersion() != 0) {
        b.setModelVersion(m.modelVersion());
      }
      setIfPresent(m.docString(), b::setDocString);
      for (Metadata e : m.metadata()) {
        b.addMetadataProps(entry(e.key(), e.value()));
      }
      b.setGraph(graph(m.graph(), true));
      return b.build();
    }

    GraphProto graph(Graph g, boolean main) {
      GraphProto.Builder b = parse(g.extras(), GraphProto.newBuilder(), GraphProto.parser());
      for (Node n : g.nodes()) {
        b.addNode(node(n));
      }
      setIfPresent(g.name(), b::setName);
      for (Tensor t : g.initializers()) {
        b.addInitializer(tensor(t, main && sink != null && t.data().remaining() >= EXTERNAL_MIN_BYTES));
      }
      g.inputs().forEach(v -> b.addInput(value(v)));
      g.outputs().forEach(v -> b.addOutput(value(v)));
      g.valueInfo().forEach(v -> b.addValueInfo(value(v)));
      return b.build();
    }

    NodeProto node(Node n) {
      NodeProto.Builder b = parse(n.extras(), NodeProto.newBuilder(), NodeProto.parser());
      b.addAllInput(n.inputs()).addAllOutput(n.outputs());
      setIfPresent(n.name(), b::setName);
      b.setOpType(n.opType());
      setIfPresent(n.domain(), b::setDomain);
      for (Attribute a : n.attributes()) {
        b.addAttribute(attribute(a));
      }
      return b.build();
    }

    AttributeProto attribute(Attribute a) {
      AttributeProto.Builder b = parse(a.extras(), AttributeProto.newBuilder(), AttributeProto.parser());
      b.setName(a.name());
      switch (a) {
        case Attribute.FloatAttr f -> b.setType(AttributeProto.AttributeType.FLOAT).setF(f.value());
        case Attribute.IntAttr i -> b.setType(AttributeProto.AttributeType.INT).setI(i.value());
        case Attribute.StringAttr s ->
            b.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFrom(s.value().toByteArray()));
        case Attribute.TensorAttr t -> b.setType(AttributeProto.AttributeType.TENSOR).setT(tensor(t.value(), false));
        case Attribute.GraphAttr g -> b.setType(AttributeProto.AttributeType.GRAPH).setG(graph(g.value(), false));
        case Attribute.FloatsAttr f -> b.setType(AttributeProto.AttributeType.FLOATS).addAllFloats(f.values());
        case Attribute.IntsAttr i -> b.setType(AttributeProto.AttributeType.INTS).addAllInts(i.values());
        case Attribute.StringsAttr s -> {
          b.setType(AttributeProto.AttributeType.STRINGS);
          s.values().forEach(v -> b.addStrings(ByteString.copyFrom(v.toByteArray())));
        }
        case Attribute.TensorsAttr t -> {
          b.setType(AttributeProto.AttributeType.TENSORS);
          t.values().forEach(v -> b.addTensors(tensor(v, false)));
        }
        case Attribute.GraphsAttr g -> {
          b.setType(AttributeProto.AttributeType.GRAPHS);
          g.values().forEach(v -> b.addGraphs(graph(v, false)));
        }
        case Attribute.OpaqueAttr o -> {} // its extras hold the type and value

      }
      return b.build();
    }

    TensorProto tensor(Tensor t, boolean external) {
      TensorProto.Builder b = parse(t.extras(), TensorProto.newBuilder(), TensorProto.parser());
      b.addAllDims(t.dims()).setDataType(t.dtype().code());
      setIfPresent(t.name(), b::setName);
      if (t.dtype() == DType.STRING) {
        return b.build();
      }
      if (external) {
        try {
          sink.append(t, b);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      } else {
        b.setRawData(UnsafeByteOperations.unsafeWrap(t.data()));
      }
      return b.build();
    }

    ValueInfoProto value(Value v) {
      ValueInfoProto.Builder b = parse(v.extras(), ValueInfoProto.newBuilder(), ValueInfoProto.parser());
      b.setName(v.name());
      if (v.type() != null) {
        TypeProto.Tensor.Builder tt = TypeProto.Tensor.newBuilder().setElemType(v.type().dtype().code());
        if (v.type().shape() != null) {
          TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
          for (Dim d : v.type().shape()) {
            TensorShapeProto.Dimension.Builder db = TensorShapeProto.Dimension.newBuilder();
            if (d.isFixed()) {
              db.setDimValue(d.size());
            } else if (d.symbol() != null) {
              db.setDimParam(d.symbol());
            }
            if (d.denotation() != null) {
              db.setDenotation(d.denotation());
            }
            shape.addDim(db);
          }
          tt.setShape(shape);
        }
        b.getTypeBuilder().setTensorType(tt);
      }
      return b.build();
    }
  }

  private static StringStringEntryProto entry(String key, String value) {
    return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
  }

  private static void setIfPresent(String value, java.util.function.Consumer<String> setter) {
    if (!value.isEmpty()) {
      setter.accept(value);
    }
  }

  @SuppressWarnings("unchecked")
  private static <B extends com.google.protobuf.Message.Builder> B parse(
      Blob extras, B empty, com.google.protobuf.Parser<? extends com.google.protobuf.Message> parser) {
    if (extras.isEmpty()) {
      return empty;
    }
    try {
      return (B) parser.parseFrom(extras.toByteArray()).toBuilder();
    } catch (InvalidProtocolBufferException e) {
      // Extras are only ever made by the reader from a message that parsed; failing here is a bug.
      throw new IllegalStateException("Corrupt extras in the IR", e);
    }
  }
}
