package dev.vitq.models;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.onnx.OnnxWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * A corpus of corrupt and hostile model files, each made from a small valid ViT by one defect: every one must be
 * refused with one clear sentence. And a few valid models that are not ViTs, which must not be.
 */
public final class HostileModels {
  /** A tiny but complete ViT: the base every defect is applied to. */
  public static final VitConfig TINY = new VitConfig(16, 8, 3, 16, 2, 2, 32, 4);

  private HostileModels() {}

  /** Writes a valid tiny ViT to {@code file}. */
  public static void writeValid(Path file) throws IOException {
    Files.write(file, validBytes());
  }

  /** The bytes of the valid tiny ViT. */
  public static byte[] validBytes() {
    try {
      return OnnxWriter.toBytes(VitBuilder.build(TINY, Spelling.TIMM_17, 1));
    } catch (VitqException e) {
      throw new IllegalStateException(e);
    }
  }

  private static ModelProto valid() {
    return OnnxWriter.toProto(VitBuilder.build(TINY, Spelling.TIMM_17, 1));
  }

  /** Writes each hostile model into {@code dir} (with any side files it needs) and returns name to model file. */
  public static Map<String, Path> writeAll(Path dir) throws IOException {
    Map<String, Path> cases = new LinkedHashMap<>();
    byte[] good = validBytes();
    Random random = new Random(7);

    put(cases, dir, "empty", new byte[0]);
    put(cases, dir, "truncated", java.util.Arrays.copyOf(good, good.length / 2));
    put(cases, dir, "truncated-header", java.util.Arrays.copyOf(good, 7));
    byte[] noise = new byte[4096];
    random.nextBytes(noise);
    put(cases, dir, "random-bytes", noise);
    put(cases, dir, "text", "This is a README, not a model.\n".getBytes(StandardCharsets.UTF_8));
    put(cases, dir, "json", "{\"model\": \"vit\", \"layers\": [1, 2, 3]}".getBytes(StandardCharsets.UTF_8));

    Files.write(dir.resolve("secret.bin"), new byte[1 << 16]);
    Path sub = Files.createDirectories(dir.resolve("escape"));
    put(cases, sub, "external-escapes-folder", external(valid(), "../secret.bin", 0));
    put(cases, dir, "external-absolute-path", external(valid(), "/etc/passwd", 0));
    Path linkDir = Files.createDirectories(dir.resolve("link"));
    Files.createSymbolicLink(linkDir.resolve("weights.bin"), dir.resolve("secret.bin"));
    put(cases, linkDir, "external-link-leaves-folder", external(valid(), "weights.bin", 0));
    Path pastEnd = Files.createDirectories(dir.resolve("past-end"));
    Files.write(pastEnd.resolve("weights.bin"), new byte[64]);
    put(cases, pastEnd, "external-offset-past-end", external(valid(), "weights.bin", 1 << 20));
    put(cases, dir, "external-file-missing", external(valid(), "nowhere.bin", 0));

    put(cases, dir, "raw-data-short", editInitializer(valid(), "pos_embed", t -> t.setRawData(
        t.getRawData().substring(0, t.getRawData().size() / 2))));
    put(cases, dir, "absurd-dimensions", editInitializer(valid(), "cls_token", t -> t.clearDims()
        .addDims(1L << 40).addDims(1L << 40).addDims(1L << 40)));
    put(cases, dir, "negative-dimension", editInitializer(valid(), "cls_token", t -> t.setDims(1, -3)));
    put(cases, dir, "unknown-element-type", editInitializer(valid(), "cls_token", t -> t.setDataType(99)));
    put(cases, dir, "nan-weights", editInitializer(valid(), "head.weight", t -> {
      ByteBuffer b = ByteBuffer.wrap(t.getRawData().toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
      b.putFloat(4, Float.NaN);
      t.setRawData(ByteString.copyFrom(b.array()));
    }));
    put(cases, dir, "typed-data-short", editInitializer(valid(), "head.bias", t -> t.clearRawData().addFloatData(1f)));

    ModelProto.Builder absurdInput = valid().toBuilder();
    absurdInput.getGraphBuilder().getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder().getShapeBuilder()
        .getDimBuilder(2).setDimValue(1_000_000_000_000_000L);
    put(cases, dir, "absurd-input-shape", absurdInput.build().toByteArray());

    ModelProto.Builder dangling = valid().toBuilder();
    NodeProto.Builder n = dangling.getGraphBuilder().getNodeBuilder(3);
    n.setInput(0, "no_such_value");
    put(cases, dir, "dangling-input", dangling.build().toByteArray());

    ModelProto.Builder missingTensor = valid().toBuilder();
    GraphProto.Builder g = missingTensor.getGraphBuilder();
    for (int i = 0; i < g.getInitializerCount(); i++) {
      if (g.getInitializer(i).getName().equals("head.weight")) {
        g.removeInitializer(i);
        break;
      }
    }
    put(cases, dir, "missing-initializer", missingTensor.build().toByteArray());

    ModelProto.Builder cycle = valid().toBuilder();
    GraphProto.Builder cg = cycle.getGraphBuilder();
    cg.addNode(NodeProto.newBuilder().setOpType("Relu").addInput("loop_b").addOutput("loop_a"));
    cg.addNode(NodeProto.newBuilder().setOpType("Relu").addInput("loop_a").addOutput("loop_b"));
    put(cases, dir, "cycle", cycle.build().toByteArray());

    ModelProto.Builder noNodes = valid().toBuilder();
    noNodes.getGraphBuilder().clearNode();
    put(cases, dir, "no-nodes", noNodes.build().toByteArray());

    ModelProto.Builder noOutputs = valid().toBuilder();
    noOutputs.getGraphBuilder().clearOutput();
    put(cases, dir, "no-outputs", noOutputs.build().toByteArray());

    ModelProto.Builder noGraph = valid().toBuilder().clearGraph();
    put(cases, dir, "no-graph", noGraph.build().toByteArray());

    ModelProto.Builder futureOpset = valid().toBuilder();
    futureOpset.getOpsetImportBuilder(0).setVersion(99);
    put(cases, dir, "opset-from-the-future", futureOpset.build().toByteArray());

    put(cases, dir, "ir-from-the-future", valid().toBuilder().setIrVersion(99).build().toByteArray());
    put(cases, dir, "ir-version-missing", valid().toBuilder().clearIrVersion().build().toByteArray());

    ModelProto.Builder twice = valid().toBuilder();
    GraphProto.Builder tg = twice.getGraphBuilder();
    tg.addNode(NodeProto.newBuilder().setOpType("Identity").addInput("pixel_values").addOutput(tg.getNode(0)
        .getOutput(0)));
    put(cases, dir, "value-defined-twice", twice.build().toByteArray());

    ModelProto.Builder deep = valid().toBuilder();
    GraphProto.Builder inner = GraphProto.newBuilder().setName("deep");
    for (int i = 0; i < 200; i++) {
      inner = GraphProto.newBuilder().setName("deep" + i).addNode(NodeProto.newBuilder().setOpType("If")
          .addAttribute(AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH)
              .setG(inner)));
    }
    deep.getGraphBuilder().addNode(NodeProto.newBuilder().setOpType("If").addInput("pixel_values").addOutput("deep_out")
        .addAttribute(AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH)
            .setG(inner)));
    put(cases, dir, "nesting-too-deep", deep.build().toByteArray());
    return cases;
  }

  /**
   * Writes valid ONNX models that are not ViTs vitq recognises into {@code dir} and returns name to model file: they
   * convert and inspect, and quantize generically where they have an image input.
   */
  public static Map<String, Path> writeNonVits(Path dir) throws IOException {
    Map<String, Path> cases = new LinkedHashMap<>();
    ModelProto.Builder intImage = valid().toBuilder();
    intImage.getGraphBuilder().getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder().setElemType(7);
    put(cases, dir, "image-input-int64", intImage.build().toByteArray());

    put(cases, dir, "int-weights", editInitializer(valid(), "patch_embed.proj.weight", t -> {
      long count = 1;
      for (long d : t.getDimsList()) {
        count *= d;
      }
      t.setDataType(6).setRawData(ByteString.copyFrom(new byte[(int) count * 4]));
    }));

    put(cases, dir, "not-a-vit", notAVit().toByteArray());
    return cases;
  }

  private static void put(Map<String, Path> cases, Path dir, String name, byte[] bytes) throws IOException {
    Path file = dir.resolve(name + ".onnx");
    Files.write(file, bytes);
    cases.put(name, file);
  }

  /** The model with head.weight moved to external data at {@code location}. */
  private static byte[] external(ModelProto m, String location, long offset) {
    return editInitializer(m, "head.weight", t -> {
      int length = t.getRawData().size();
      t.clearRawData()
          .setDataLocation(TensorProto.DataLocation.EXTERNAL)
          .addExternalData(entry("location", location))
          .addExternalData(entry("offset", Long.toString(offset)))
          .addExternalData(entry("length", Long.toString(length)));
    });
  }

  private static StringStringEntryProto entry(String k, String v) {
    return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
  }

  private static byte[] editInitializer(ModelProto m, String name,
      java.util.function.Consumer<TensorProto.Builder> edit) {
    ModelProto.Builder b = m.toBuilder();
    for (TensorProto.Builder t : b.getGraphBuilder().getInitializerBuilderList()) {
      if (t.getName().equals(name)) {
        edit.accept(t);
      }
    }
    return b.build().toByteArray();
  }

  /** A valid ONNX model that is a small MLP, not a ViT. */
  private static ModelProto notAVit() {
    GraphBuilder b = GraphBuilder.empty();
    String w = b.initializer("w", Tensor.ofFloats("", java.util.List.of(8L, 4L), new float[32]));
    b.add(Node.of("mm", "MatMul", java.util.List.of("x", w), java.util.List.of("h")));
    b.add(Node.of("relu", "Relu", java.util.List.of("h"), java.util.List.of("y")));
    Graph graph = new Graph("mlp", b.nodes(),
        java.util.List.of(Value.of("x", TensorType.of(DType.FLOAT, "batch", 8))),
        java.util.List.of(Value.of("y", TensorType.of(DType.FLOAT, "batch", 4))), b.initializers(),
        java.util.List.of(), Blob.EMPTY);
    return OnnxWriter.toProto(new Model(8, java.util.List.of(new OpsetId("", 17)), "test", "1", "", 0, "",
        java.util.List.of(), graph, Blob.EMPTY));
  }
}
