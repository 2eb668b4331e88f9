package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.quantizer.QuantPlan;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quantize}, {@code eval} and {@code bench} on small built models and synthetic images. */
class QuantizeCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    images = CliFixtures.images(shared.resolve("images"), 32, 3, 8, 1);
  }

  private static CliRun quantize(Path out, String... extra) {
    List<String> args = new java.util.ArrayList<>(List.of("quantize", model.toString(), "--calib", images.toString(),
        "-o", out.toString(), "-q"));
    args.addAll(List.of(extra));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void everySchemeWritesARunnableModelWithIntegerWeights(@TempDir Path dir) throws Exception {
    for (String scheme : List.of("w8a8", "w6a6", "w4a8", "w4a4")) {
      Path out = dir.resolve(scheme + ".onnx");
      CliRun r = quantize(out, "--scheme", scheme, "--json");
      assertEquals(0, r.exitCode(), r.err());
      JsonNode j = JSON.readTree(r.out());
      assertEquals(scheme, j.get("scheme").asText());
      assertEquals(24, j.get("calibration_images").asInt());
      Model q = OnnxReader.read(out);
      DType stored = scheme.startsWith("w4") ? DType.INT4 : DType.INT8;
      assertTrue(q.graph().initializers().stream().anyMatch(t -> t.dtype() == stored), scheme + " stores " + stored);
      assertTrue(q.graph().initializers().stream().noneMatch(t -> t.name().endsWith("qkv.weight")
          || t.name().endsWith("fc1.weight")), "float weights left in " + scheme);
      assertTrue(q.metadata("vitq").orElseThrow().contains("\"scheme\":\"" + scheme + "\""));
      assertTrue(q.metadata("preprocess").isPresent(), "preprocessing kept");
      CliRun e = CliRun.of("eval", out.toString(), "--data", images.toString(), "--ref", model.toString(), "--json",
          "-q");
      assertEquals(0, e.exitCode(), e.err());
      JsonNode ej = JSON.readTree(e.out());
      assertEquals(24, ej.get("images").asInt());
      double agreement = ej.get("agreement").asDouble();
      assertTrue(agreement >= 0 && agreement <= 1);
    }
  }

  @Test
  void w8a8AgreesWithTheFloatModelOnMostImages(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("w8a8.onnx");
    assertEquals(0, quantize(out).exitCode());
    CliRun e = CliRun.of("eval", out.toString(), "--data", images.toString(), "--ref", model.toString(), "--json",
        "-q");
    assertTrue(JSON.readTree(e.out()).get("agreement").asDouble() >= 0.9, e.out());
  }

  @Test
  void postNormInputsPerChannelShipAsPerTensorAndKeepAgreement(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("w4a4.onnx");
    Path plan = dir.resolve("plan.json");
    CliRun r = quantize(out, "--scheme", "w4a4", "--quantizers", "ln-reparam,norm-input-8bit,log-sqrt2-softmax",
        "--plan-out", plan.toString());
    assertEquals(0, r.exitCode(), r.err());
    QuantPlan p = QuantPlan.fromJson(Files.readString(plan));
    // Both norms of both blocks: q/k/v and fc1 read a norm's output per channel.
    assertEquals(4, p.entries().stream().filter(dev.vitq.quantizer.LayerNormReparam::applies).count());
    assertTrue(p.entries().stream().filter(e -> e.role() == dev.vitq.quantizer.Role.NORM_INPUT)
        .allMatch(e -> e.quantizer().bits() == 8), "layer-norm inputs at 8 bits");
    assertTrue(p.entries().stream().filter(e -> e.role() == dev.vitq.quantizer.Role.SOFTMAX_OUTPUT)
        .allMatch(e -> e.quantizer().kind() == dev.vitq.quantizer.Quantizer.Kind.LOG_SQRT2));
    Model q = OnnxReader.read(out);
    assertTrue(q.graph().nodes().stream().filter(n -> n.is("QuantizeLinear"))
        .noneMatch(n -> n.attribute("axis").isPresent()), "no per-axis activation quantizer ships");
    CliRun e = CliRun.of("eval", out.toString(), "--data", images.toString(), "--ref", model.toString(), "--json",
        "-q");
    assertEquals(0, e.exitCode(), e.err());
    assertTrue(JSON.readTree(e.out()).get("agreement").asDouble() >= 0.5, e.out());
  }

  @Test
  void gptqAndBiasCorrectionChangeTheWeightsDeterministically(@TempDir Path dir) throws Exception {
    Path plain = dir.resolve("plain.onnx");
    Path a = dir.resolve("a.onnx");
    Path b = dir.resolve("b.onnx");
    assertEquals(0, quantize(plain, "--scheme", "w4a8", "--quantizers", "none").exitCode());
    CliRun r = quantize(a, "--scheme", "w4a8", "--quantizers", "gptq,bias-correction");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals(0, quantize(b, "--scheme", "w4a8", "--quantizers", "gptq,bias-correction").exitCode());
    assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b), "same seed, same bytes");
    assertFalse(java.util.Arrays.equals(Files.readAllBytes(plain), Files.readAllBytes(a)), "other levels");
    CliRun e = CliRun.of("eval", a.toString(), "--data", images.toString(), "--ref", model.toString(), "--json", "-q");
    assertEquals(0, e.exitCode(), e.err());
    assertTrue(JSON.readTree(e.out()).get("agreement").asDouble() >= 0.5, e.out());
  }

  @Test
  void sameSeedGivesByteIdenticalModelAndPlan(@TempDir Path dir) throws Exception {
    Path a = dir.resolve("a.onnx");
    Path b = dir.resolve("b.onnx");
    assertEquals(0, quantize(a, "--seed", "7", "--plan-out", dir.resolve("a.json").toString()).exitCode());
    assertEquals(0, quantize(b, "--seed", "7", "--plan-out", dir.resolve("b.json").toString()).exitCode());
    assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    assertArrayEquals(Files.readAllBytes(dir.resolve("a.json")), Files.readAllBytes(dir.resolve("b.json")));
    QuantPlan plan = QuantPlan.fromJson(Files.readString(dir.resolve("a.json")));
    assertEquals(7, plan.seed());
    assertFalse(plan.entries().isEmpty());
  }

  @Test
  void deployedGraphHasTheShapeOnnxRuntimeFuses(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("w8a8.onnx");
    assertEquals(0, quantize(out).exitCode());
    Model q = OnnxReader.read(out);
    // The attention MatMuls and the head read DequantizeLinear pairs, which ONNX Runtime fuses; the blocks' linear
    // layers are already its integer kernel, reading the quantized activation and the int8 weight, bias fused.
    var producers = new java.util.HashMap<String, Node>();
    q.graph().nodes().forEach(n -> n.outputs().forEach(o -> producers.put(o, n)));
    long qdq = q.graph().nodes().stream().filter(n -> n.is("MatMul") || n.is("Gemm"))
        .filter(n -> n.inputs().stream().limit(2).allMatch(i -> producers.containsKey(i)
            && producers.get(i).is("DequantizeLinear")))
        .count();
    assertEquals(1 + 2 * 2, qdq, "the head, 2 attention MatMuls per block");
    var weights = new java.util.HashMap<String, DType>();
    q.graph().initializers().forEach(t -> weights.put(t.name(), t.dtype()));
    long kernels = q.graph().nodes().stream().filter(n -> n.opType().equals("MatMulIntegerToFloat"))
        .filter(n -> producers.get(n.input(0)).is("QuantizeLinear") && weights.get(n.input(1)) == DType.INT8
            && weights.get(n.input(6)) == DType.FLOAT)
        .count();
    assertEquals(2 * 4, kernels, "qkv, proj, fc1, fc2 per block");
    assertTrue(q.graph().nodes().stream().anyMatch(n -> n.opType().equals("SkipLayerNormalization")));
  }

  @Test
  void theDemoRunsWithoutAModel(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("demo.onnx");
    CliRun r = CliRun.of("quantize", "-o", out.toString(), "-q", "--json");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals("demo-vit-tiny-32", JSON.readTree(r.out()).get("source").asText());
    assertTrue(Files.size(out) > 1_000_000);
  }

  @Test
  void benchReportsLatency() throws Exception {
    CliRun r = CliRun.of("bench", model.toString(), "--batch", "2", "--runs", "5", "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = JSON.readTree(r.out());
    assertEquals(2, j.get("batch").asInt());
    assertTrue(j.get("median_millis").asDouble() > 0);
    assertTrue(j.get("p90_millis").asDouble() >= j.get("median_millis").asDouble());
  }

  // ---- bad input -------------------------------------------------------------------------------------------

  @Test
  void unknownSchemeOrMethodIsAUserError(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    quantize(out, "--scheme", "w3a3").assertUserError("Unknown scheme 'w3a3'", out);
    quantize(out, "--method", "entropy").assertUserError("Unknown method 'entropy'", out);
    quantize(out, "--search", "genetic").assertUserError("Unknown search 'genetic'", out);
    quantize(out, "--quantizers", "ln-reparam,smoothquant").assertUserError("Unknown quantizer technique "
        + "'smoothquant'", out);
  }

  @Test
  void emptyOrUnreadableImageFoldersAreUserErrors(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    Path empty = Files.createDirectories(dir.resolve("empty"));
    CliRun.of("quantize", model.toString(), "--calib", empty.toString(), "-o", out.toString()).assertUserError(
        "holds no JPEG or PNG images", out);
    Path corrupt = Files.createDirectories(dir.resolve("corrupt"));
    Files.write(corrupt.resolve("a.png"), new byte[] {1, 2, 3});
    Files.writeString(corrupt.resolve("b.jpg"), "not an image");
    CliRun.of("quantize", model.toString(), "--calib", corrupt.toString(), "-o", out.toString()).assertUserError(
        "None of the 2 images", out);
    CliRun.of("quantize", model.toString(), "--calib", dir.resolve("missing").toString(), "-o",
        out.toString()).assertUserError("does not exist", out);
  }

  @Test
  void unreadableImagesAreCountedAndSkipped(@TempDir Path dir) throws Exception {
    Path mixed = dir.resolve("mixed");
    CliFixtures.images(mixed, 32, 1, 4, 9);
    Files.write(mixed.resolve("class0").resolve("broken.png"), new byte[] {(byte) 0x89, 'P', 'N', 'G'});
    Path out = dir.resolve("out.onnx");
    CliRun r = CliRun.of("quantize", model.toString(), "--calib", mixed.toString(), "-o", out.toString(), "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = JSON.readTree(r.out());
    assertEquals(1, j.get("skipped_images").asInt());
    assertEquals(4, j.get("calibration_images").asInt());
  }

  @Test
  void wrongImageSizeNeedsResize(@TempDir Path dir) throws Exception {
    Path big = dir.resolve("big");
    CliFixtures.images(big, 48, 1, 3, 2);
    Path out = dir.resolve("out.onnx");
    CliRun.of("quantize", model.toString(), "--calib", big.toString(), "-o", out.toString()).assertUserError(
        "pass --resize", out);
    CliRun resized = CliRun.of("quantize", model.toString(), "--calib", big.toString(), "--resize", "36", "-o",
        out.toString(), "-q");
    assertEquals(0, resized.exitCode(), resized.err());
  }

  @Test
  void aModelWithoutAnImageInputIsAUserError(@TempDir Path dir) throws Exception {
    Model m = OnnxReader.read(model);
    var input = m.graph().inputs().get(0);
    var tokens = dev.vitq.models.Value.of(input.name(), dev.vitq.models.TensorType.of(DType.INT64, "batch", 16));
    Path bad = dir.resolve("tokens.onnx");
    dev.vitq.models.onnx.OnnxWriter.write(m.withGraph(m.graph().withInputs(List.of(tokens))), bad);
    Path out = dir.resolve("out.onnx");
    CliRun r = CliRun.of("eval", bad.toString(), "--data", images.toString());
    assertEquals(1, r.exitCode(), r.err());
    assertTrue(r.err().contains("is not an image tensor"), r.err());
    CliRun.of("quantize", bad.toString(), "--calib", images.toString(), "-o", out.toString()).assertUserError(
        "vitq: ", out);
  }

  private static Path notAVit(Path dir) throws Exception {
    return CliFixtures.notAVit(model, dir);
  }

  @Test
  void aModelThatIsNotAViTIsQuantizedGenericallyWithOneLineSayingWhy(@TempDir Path dir) throws Exception {
    Path generic = notAVit(dir);
    Path out = dir.resolve("generic.onnx");
    CliRun r = CliRun.of("quantize", generic.toString(), "--calib", images.toString(), "-o", out.toString(), "-q");
    assertEquals(0, r.exitCode(), r.err());
    List<String> why = r.out().lines().filter(l -> l.contains("not a transformer encoder")).toList();
    assertEquals(1, why.size(), r.out());
    assertTrue(why.get(0).startsWith("sigmoid-attention.onnx is not a transformer encoder vitq recognises: block 0 "
        + "has 0 softmax"), why.get(0));
    assertTrue(why.get(0).contains("LayerNorm channel factors, log2 softmax, per-block search"), why.get(0));
    Model q = OnnxReader.read(out);
    long matmulWeights = OnnxReader.read(generic).graph().nodes().stream()
        .filter(n -> n.is("MatMul") || n.is("Gemm")).filter(n -> n.input(1).endsWith(".weight")).count();
    assertEquals(matmulWeights + 1, q.graph().initializers().stream().filter(t -> t.dtype() == DType.INT8).count(),
        "every MatMul and Gemm weight and the patch convolution's stored as int8");
    CliRun e = CliRun.of("eval", out.toString(), "--data", images.toString(), "--ref", generic.toString(), "--json",
        "-q");
    assertEquals(0, e.exitCode(), e.err());
    assertTrue(JSON.readTree(e.out()).get("agreement").asDouble() >= 0.9, e.out());

    Path searched = dir.resolve("searched.onnx");
    CliRun.of("quantize", generic.toString(), "--calib", images.toString(), "--search", "evolq",
        "-o", searched.toString()).assertUserError("--search evolq searches a ViT's blocks", searched);
  }

  @Test
  void quantizingARealModelNeedsCalibrationImages(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    CliRun.of("quantize", model.toString(), "-o", out.toString()).assertUserError("Pass --calib DIR", out);
  }

}
