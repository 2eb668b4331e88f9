package dev.vitq.models.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.Metadata;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads ONNX files into the IR, losslessly, and checks what it read.
 *
 * <p>Fields the IR models become record components; the rest of each message is kept in its {@code extras} so the
 * writer can put it back. Tensor data in typed fields ({@code float_data}, {@code int32_data}, ...) is converted to
 * raw layout. External data is read only from regular files inside the model's folder, within their bounds.
 *
 * {@snippet lang="java" :
 * Model model = OnnxReader.read(Path.of("vit.onnx"));
 * }
 */
public final class OnnxReader {
  /** Files past this size cannot be protobuf messages (the format's 2 GiB limit). */
  private static final long MAX_PROTO_BYTES = Integer.MAX_VALUE;

  private final Path baseDir;
  private final String source;

  OnnxReader(Path baseDir, String source) {
    this.baseDir = baseDir;
    this.source = source;
  }

  /**
   * Reads and checks a model file; external data is resolved against the file's folder.
   *
   * @throws VitqException if the file is missing, unreadable, not ONNX, or fails {@link ModelChecker}
   */
  public static Model read(Path file) throws VitqException {
    String name = file.getFileName() == null ? file.toString() : file.getFileName().toString();
    byte[] bytes;
    try {
      if (Files.isDirectory(file)) {
        throw new VitqException(file + " is a folder, not an ONNX model file.");
      }
      long size = Files.size(file);
      if (size > MAX_PROTO_BYTES) {
        throw new VitqException(name + " is larger than 2 GiB, which no ONNX protobuf can be; keep weights in"
            + " external data.");
      }
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new VitqException("Model file " + file + " does not exist.", e);
    } catch (IOException e) {
      throw new VitqException("Cannot read model file " + file + ": " + e.getMessage() + ".", e);
    }
    Path dir = file.toAbsolutePath().getParent();
    return new OnnxReader(dir, name).parse(bytes);
  }

  /**
   * Reads and checks a model from bytes. With {@code baseDir} null, a model that refers to external data is
   * rejected.
   *
   * @throws VitqException if the bytes are not a valid ONNX model
   */
  public static Model read(byte[] bytes, Path baseDir, String source) throws VitqException {
    return new OnnxReader(baseDir, source).parse(bytes);
  }

  private Model parse(byte[] bytes) throws VitqException {
    if (bytes.length == 0) {
      throw new VitqException(source + " is empty, not an ONNX model.");
    }
    ModelProto proto;
    try {
      CodedInputStream in = CodedInputStream.newInstance(bytes);
      in.enableAliasing(true); // tensor data stays in the file's buffer instead of being copied
      proto = ModelProto.parseFrom(in);
      in.checkLastTagWas(0);
    } catch (InvalidProtocolBufferException e) {
      if (String.valueOf(e.getMessage()).contains("recursion")) {
        throw new VitqException(source + " nests messages deeper than protobuf allows (100 levels).", e);
      }
      throw new VitqException(source + " is not an ONNX model: its protobuf encoding is truncated or corrupt.", e);
    } catch (IOException e) {
      throw new VitqException("Cannot read " + source + ": " + e.getMessage() + ".", e);
    }
    if (!proto.hasGraph()) {
      throw new VitqException(source + " is not an ONNX model: it has no graph.");
    }
    Model model;
    try {
      model = toModel(proto);
    } catch (IllegalArgumentException e) {
      throw new VitqException(source + " is malformed: " + e.getMessage() + ".", e);
    }
    ModelChecker.check(model, source);
    return model;
  }

  private Model toModel(ModelProto m) throws VitqException {
    List<OpsetId> opsets = new ArrayList<>();
    m.getOpsetImportList().forEach(o -> opsets.add(new OpsetId(o.getDomain(), o.getVersion())));
    List<Metadata> metadata = new ArrayList<>();
    for (StringStringEntryProto e : m.getMetadataPropsList()) {
      metadata.add(new Metadata(e.getKey(), e.getValue()));
    }
    ModelProto rest =
        m.toBuilder()
            .clearIrVersion()
            .clearOpsetImport()
            .clearProducerName()
            .clearProducerVersion()
            .clearDomain()
            .clearModelVersion()
            .clearDocString()
            .clearMetadataProps()
            .clearGraph()
            .build();
    return new Model(
        m.getIrVersion(),
        opsets,
        m.getProducerName(),
        m.getProducerVersion(),
        m.getDomain(),
        m.getModelVersion(),
        m.getDocString(),
        metadata,
        toGraph(m.getGraph()),
        blob(rest));
  }

  private Graph toGraph(GraphProto g) throws VitqException {
    List<Node> nodes = new ArrayList<>(g.getNodeCount());
    for (NodeProto n : g.getNodeList()) {
      nodes.add(toNode(n));
    }
    List<Tensor> initializers = new ArrayList<>(g.getInitializerCount());
    for (TensorProto t : g.getInitializerList()) {
      initializers.add(toTensor(t));
    }
    GraphProto rest =
        g.toBuilder()
            .clearNode()
            .clearName()
            .clearInitializer()
            .clearInput()
            .clearOutput()
            .clearValueInfo()
            .build();
    return new Graph(
        g.getName(),
        nodes,
        toValues(g.getInputList()),
        toValues(g.getOutputList()),
        initializers,
        toValues(g.getValueInfoList()),
        blob(rest));
  }

  Node toNode(NodeProto n) throws VitqException {
    List<Attribute> attrs = new ArrayList<>(n.getAttributeCount());
    for (AttributeProto a : n.getAttributeList()) {
      attrs.add(toAttribute(a));
    }
    NodeProto rest =
        n.toBuilder().clearInput().clearOutput().clearName().clearOpType().clearDomain().clearAttribute().build();
    return new Node(n.getName(), n.getOpType(), n.getDomain(), n.getInputList(), n.getOutputList(), attrs, blob(rest));
  }

  /** The file name messages name. */
  String source() {
    return source;
  }

  Attribute toAttribute(AttributeProto a) throws VitqException {
    AttributeProto.Builder rest = a.toBuilder().clearName().clearType();
    String name = a.getName();
    return switch (a.getType()) {
      case FLOAT -> new Attribute.FloatAttr(name, a.getF(), blob(rest.clearF().build()));
      case INT -> new Attribute.IntAttr(name, a.getI(), blob(rest.clearI().build()));
      case STRING -> new Attribute.StringAttr(name, Blob.of(a.getS().toByteArray()), blob(rest.clearS().build()));
      case TENSOR -> new Attribute.TensorAttr(name, toTensor(a.getT()), blob(rest.clearT().build()));
      case GRAPH -> new Attribute.GraphAttr(name, toGraph(a.getG()), blob(rest.clearG().build()));
      case FLOATS -> new Attribute.FloatsAttr(name, a.getFloatsList(), blob(rest.clearFloats().build()));
      case INTS -> new Attribute.IntsAttr(name, a.getIntsList(), blob(rest.clearInts().build()));
      case STRINGS -> {
        List<Blob> values = a.getStringsList().stream().map(s -> Blob.of(s.toByteArray())).toList();
        yield new Attribute.StringsAttr(name, values, blob(rest.clearStrings().build()));
      }
      case TENSORS -> {
        List<Tensor> values = new ArrayList<>();
        for (TensorProto t : a.getTensorsList()) {
          values.add(toTensor(t));
        }
        yield new Attribute.TensorsAttr(name, values, blob(rest.clearTensors().build()));
      }
      case GRAPHS -> {
        List<Graph> values = new ArrayList<>();
        for (GraphProto g : a.getGraphsList()) {
          values.add(toGraph(g));
        }
        yield new Attribute.GraphsAttr(name, values, blob(rest.clearGraphs().build()));
      }
      // The type stays in extras: proto2 keeps an enum value it does not know only there.
      default -> new Attribute.OpaqueAttr(name, a.getType().getNumber(), blob(a.toBuilder().clearName().build()));
    };
  }

  private List<Value> toValues(List<ValueInfoProto> infos) throws VitqException {
    List<Value> values = new ArrayList<>(infos.size());
    for (ValueInfoProto v : infos) {
      values.add(toValue(v));
    }
    return values;
  }

  private Value toValue(ValueInfoProto v) throws VitqException {
    ValueInfoProto.Builder rest = v.toBuilder().clearName();
    TensorType type = null;
    TypeProto t = v.getType();
    if (t.hasTensorType() && DType.isKnown(t.getTensorType().getElemType())) {
      TypeProto.Tensor tt = t.getTensorType();
      List<Dim> shape = null;
      if (tt.hasShape()) {
        shape = new ArrayList<>();
        for (TensorShapeProto.Dimension d : tt.getShape().getDimList()) {
          if (d.hasDimValue() && d.getDimValue() < 0) {
            throw new VitqException(source + " declares value '" + v.getName() + "' with a negative dimension ("
                + d.getDimValue() + ").");
          }
          shape.add(new Dim(d.hasDimValue() ? d.getDimValue() : -1, d.hasDimParam() ? d.getDimParam() : null,
              d.hasDenotation() ? d.getDenotation() : null));
        }
      }
      type = new TensorType(DType.of(tt.getElemType()), shape);
      TypeProto.Builder typeRest = t.toBuilder().clearTensorType();
      if (typeRest.build().equals(TypeProto.getDefaultInstance())) {
        rest.clearType();
      } else {
        rest.setType(typeRest);
      }
    }
    return new Value(v.getName(), type, blob(rest.build()));
  }

  private Tensor toTensor(TensorProto t) throws VitqException {
    String name = t.getName();
    String what = name.isEmpty() ? "a constant tensor" : "tensor '" + name + "'";
    if (!DType.isKnown(t.getDataType())) {
      throw new VitqException(source + " stores " + what + " with element type " + t.getDataType()
          + ", which is not an ONNX type vitq knows.");
    }
    DType dtype = DType.of(t.getDataType());
    List<Long> dims = t.getDimsList();
    for (long d : dims) {
      if (d < 0) {
        throw new VitqException(source + " gives " + what + " a negative dimension (" + d + ").");
      }
    }
    long count = Tensor.elementCount(dims);
    if (count < 0 || (dtype != DType.STRING && dtype.byteSize(count) > Integer.MAX_VALUE)) {
      throw new VitqException(source + " gives " + what + " an absurd shape " + dims + ".");
    }
    TensorProto.Builder rest = t.toBuilder().clearName().clearDataType().clearDims();
    ByteBuffer data;
    if (dtype == DType.STRING) {
      data = ByteBuffer.allocate(0);
    } else if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
      data = ExternalData.read(t, baseDir, source, what, dtype.byteSize(count));
      rest.clearDataLocation().clearExternalData();
    } else if (t.hasRawData()) {
      data = t.getRawData().asReadOnlyByteBuffer();
      if (data.remaining() != dtype.byteSize(count)) {
        throw new VitqException(source + " stores " + data.remaining() + " bytes for " + what + ", but its shape "
            + dims + " of " + dtype + " needs " + dtype.byteSize(count) + ".");
      }
      rest.clearRawData();
    } else {
      data = typedData(t, dtype, count, what);
      rest.clearFloatData().clearInt32Data().clearInt64Data().clearDoubleData().clearUint64Data();
    }
    return new Tensor(name, dtype, dims, data, blob(rest.build()));
  }

  /** Converts the typed repeated fields to raw little-endian layout. */
  private ByteBuffer typedData(TensorProto t, DType dtype, long count, String what) throws VitqException {
    int n = (int) count;
    ByteBuffer out = ByteBuffer.allocate((int) dtype.byteSize(count)).order(ByteOrder.LITTLE_ENDIAN);
    int have;
    switch (dtype) {
      case FLOAT, COMPLEX64 -> {
        have = t.getFloatDataCount();
        expect(have, dtype == DType.COMPLEX64 ? 2L * n : n, what);
        t.getFloatDataList().forEach(out::putFloat);
      }
      case DOUBLE, COMPLEX128 -> {
        have = t.getDoubleDataCount();
        expect(have, dtype == DType.COMPLEX128 ? 2L * n : n, what);
        t.getDoubleDataList().forEach(out::putDouble);
      }
      case INT64 -> {
        expect(t.getInt64DataCount(), n, what);
        t.getInt64DataList().forEach(out::putLong);
      }
      case UINT64 -> {
        expect(t.getUint64DataCount(), n, what);
        t.getUint64DataList().forEach(out::putLong);
      }
      case UINT32 -> {
        expect(t.getUint64DataCount(), n, what);
        t.getUint64DataList().forEach(v -> out.putInt((int) (long) v));
      }
      case INT32 -> {
        expect(t.getInt32DataCount(), n, what);
        t.getInt32DataList().forEach(out::putInt);
      }
      case INT16, UINT16, FLOAT16, BFLOAT16 -> {
        expect(t.getInt32DataCount(), n, what);
        t.getInt32DataList().forEach(v -> out.putShort((short) (int) v));
      }
      case INT4, UINT4, FLOAT4E2M1 -> {
        // Packed types keep one byte (two elements) per int32 entry.
        expect(t.getInt32DataCount(), (n + 1) / 2, what);
        t.getInt32DataList().forEach(v -> out.put((byte) (int) v));
      }
      default -> {
        expect(t.getInt32DataCount(), n, what);
        t.getInt32DataList().forEach(v -> out.put((byte) (int) v));
      }
    }
    return out.flip();
  }

  private void expect(long have, long need, String what) throws VitqException {
    if (have != need) {
      throw new VitqException(source + " stores " + have + " value(s) for " + what + ", but its shape needs " + need
          + ".");
    }
  }

  private static Blob blob(MessageLite rest) {
    return rest.getSerializedSize() == 0 ? Blob.EMPTY : Blob.of(rest.toByteArray());
  }
}
