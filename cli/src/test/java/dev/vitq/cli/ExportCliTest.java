package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.onnx.OnnxReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code export}, {@code eval --bundle} and {@code bench --bundle} on a small built model and synthetic images. */
class ExportCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 3);
    images = CliFixtures.images(shared.resolve("images"), 32, 3, 8, 2);
  }

  private static CliRun export(Path bundle, String... extra) {
    List<String> args = new ArrayList<>(List.of("export", model.toString(), "--calib", images.toString(), "--seed",
        "3", "-o", bundle.toString(), "-q", "--json"));
    args.addAll(List.of(extra));
    return CliRun.of(args.toArray(String[]::new));
  }

  private static JsonNode evalBundle(Path bundle, Path ref) throws Exception {
    CliRun e = CliRun.of("eval", "--bundle", bundle.toString(), "--data", images.toString(), "--ref", ref.toString(),
        "--json", "-q");
    assertEquals(0, e.exitCode(), e.err());
    return JSON.readTree(e.out());
  }

  @Test
  void deviceThenCloudPredictsAsTheSingleQuantizedModel(@TempDir Path dir) throws Exception {
    for (String scheme : List.of("w8a8", "w4a8")) {
      Path single = dir.resolve(scheme + ".onnx");
      Path plan = dir.resolve(scheme + ".plan.json");
      CliRun q = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--scheme", scheme, "--seed",
          "3", "-o", single.toString(), "-q", "--plan-out", plan.toString());
      assertEquals(0, q.exitCode(), q.err());
      // A saved plan with the calibration images gets the weight rounding quantize gave its model (GPTQ at W4A8).
      Path fromPlan = dir.resolve(scheme + "-plan");
      CliRun p = export(fromPlan, "--plan", plan.toString(), "--split", "1");
      assertEquals(0, p.exitCode(), p.err());
      // The pair adds one quantization, of the residual stream at the boundary (SplitTest checks it bit for bit);
      // on these random-weight models, whose logits are close, it may move one image of 24.
      assertTrue(evalBundle(fromPlan, single).get("agreement").asDouble() >= 23 / 24.0, scheme + " from its plan");
      for (int k = 1; k <= 2; k++) {
        Path bundle = dir.resolve(scheme + "-k" + k);
        CliRun r = export(bundle, "--scheme", scheme, "--split", "" + k);
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(17, j.get("tokens_out").asInt());
        assertEquals(17 * 32, j.get("bytes_per_image").asLong());
        JsonNode e = evalBundle(bundle, single);
        assertEquals(24, e.get("images").asInt());
        assertTrue(e.get("agreement").asDouble() >= 23 / 24.0, scheme + " split after block " + k);
      }
    }
  }

  @Test
  void aPlanShipsWithTheWeightCorrectionsItRecords(@TempDir Path dir) throws Exception {
    Path rounded = dir.resolve("rounded.plan.json");
    Path gptq = dir.resolve("gptq.plan.json");
    for (Path plan : List.of(rounded, gptq)) {
      CliRun q = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--scheme", "w4a8", "--seed",
          "3", "-o", dir.resolve("single.onnx").toString(), "-q", "--plan-out", plan.toString(), "--quantizers",
          // Layer-norm inputs quantized (the boundary needs no calibrating), with GPTQ or without: the two plans
          // differ only in their weight corrections.
          plan == rounded ? "norm-input-factors" : "norm-input-factors,gptq");
      assertEquals(0, q.exitCode(), q.err());
    }
    assertTrue(Files.readString(rounded).contains("\"weight_corrections\" : [ ]"));
    assertTrue(Files.readString(gptq).contains("\"weight_corrections\" : [ \"GPTQ\" ]"));
    assertEquals(dev.vitq.quantizer.QuantPlan.fromJson(Files.readString(rounded)).entries(),
        dev.vitq.quantizer.QuantPlan.fromJson(Files.readString(gptq)).entries(), "the same scales");
    // Without calibration images a plan's weights are rounded to nearest; with them, as the plan says.
    Path nearest = dir.resolve("nearest");
    CliRun n = CliRun.of("export", model.toString(), "--plan", rounded.toString(), "--split", "1", "-o",
        nearest.toString(), "-q");
    assertEquals(0, n.exitCode(), n.err());
    for (Path plan : List.of(rounded, gptq)) {
      Path bundle = dir.resolve(plan.getFileName() + "-bundle");
      assertEquals(0, export(bundle, "--plan", plan.toString(), "--split", "1").exitCode());
      assertEquals(plan == rounded, java.util.Arrays.equals(Files.readAllBytes(nearest.resolve("device.onnx")),
          Files.readAllBytes(bundle.resolve("device.onnx"))), plan.getFileName().toString());
    }

    // W4A8's defaults leave the layer-norm inputs in float: the boundary, where the stream crosses as levels, is
    // calibrated on the export's images, and without them the export says so.
    Path floatNorms = dir.resolve("float-norms.plan.json");
    assertEquals(0, CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--scheme", "w4a8",
        "--seed", "3", "-o", dir.resolve("single.onnx").toString(), "-q", "--plan-out", floatNorms.toString())
        .exitCode());
    assertFalse(Files.readString(floatNorms).contains("NORM_INPUT"));
    CliRun.of("export", model.toString(), "--plan", floatNorms.toString(), "--split", "1", "-o",
        dir.resolve("refused").toString(), "-q").assertUserError("The plan leaves the input of block 2 in float; pass "
        + "--calib DIR", dir.resolve("refused"));
    Path calibrated = dir.resolve("calibrated");
    assertEquals(0, export(calibrated, "--plan", floatNorms.toString(), "--split", "1").exitCode());
    assertEquals(DType.UINT8, OnnxReader.read(calibrated.resolve("device.onnx")).graph().outputs().get(0).type()
        .dtype(), "the boundary crosses as levels");
  }

  @Test
  void theDeviceSendsEightBitTokensAndTheManifestDescribesThem(@TempDir Path dir) throws Exception {
    Path bundle = dir.resolve("bundle");
    assertEquals(0, export(bundle, "--split", "2").exitCode());
    Model device = OnnxReader.read(bundle.resolve("device.onnx"));
    Model cloud = OnnxReader.read(bundle.resolve("cloud.onnx"));
    assertEquals("pixel_values", device.graph().inputs().get(0).name());
    assertEquals(DType.UINT8, device.graph().outputs().get(0).type().dtype());
    assertEquals(device.graph().outputs().stream().map(v -> v.name()).toList(),
        cloud.graph().inputs().stream().map(v -> v.name()).toList(), "the cloud reads exactly what the device sends");
    assertEquals("logits", cloud.graph().outputs().get(0).name());
    JsonNode m = JSON.readTree(bundle.resolve("manifest.json").toFile());
    assertEquals("vitq-bundle/2", m.get("format").asText());
    assertEquals(1, device.graph().outputs().size(), "only per-image values leave the device");
    assertEquals(2, m.get("split").get("device_blocks").asInt());
    assertEquals(1, m.get("split").get("cloud_blocks").asInt());
    assertEquals("boundary_tokens", m.get("boundary").get("tensor").get("name").asText());
    assertEquals("vitq-boundary/1", m.get("boundary").get("wire_format").asText());
    assertEquals("levels", m.get("boundary").get("coding").get("codec").asText());
    assertEquals("onnx", m.get("files").get("device.onnx").get("format").asText());
    assertEquals(64, m.get("source").get("sha256").asText().length());
    assertEquals(64, m.get("files").get("device.onnx").get("sha256").asText().length());
    assertEquals(0.5, m.get("preprocessing").get("mean").get(0).asDouble());
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(List.of(bundle), s.toList(), "no temporary folder left");
    }
  }

  @Test
  void fewerTokensCrossAndTheCloudAcceptsThem(@TempDir Path dir) throws Exception {
    Path single = dir.resolve("single.onnx");
    assertEquals(0, CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--seed", "3", "-o",
        single.toString(), "-q").exitCode());
    Path kept = dir.resolve("keep");
    CliRun r = export(kept, "--split", "1", "--keep-tokens", "0.5");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals(9, JSON.readTree(r.out()).get("tokens_out").asInt(), "class token and 8 of 16 patches");
    assertEquals("attention", JSON.readTree(r.out()).get("reduction").asText());
    assertTrue(evalBundle(kept, single).get("agreement").asDouble() > 0.3);
    Path fused = dir.resolve("fuse");
    r = export(fused, "--split", "1", "--keep-tokens", "0.5", "--fuse");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals(10, JSON.readTree(r.out()).get("tokens_out").asInt(), "and one token fusing the dropped 8");
    assertTrue(evalBundle(fused, single).get("agreement").asDouble() > 0.3);
    Path pooled = dir.resolve("pool");
    r = export(pooled, "--split", "2", "--pool", "2", "--cloud-precision", "fp32");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals(5, JSON.readTree(r.out()).get("tokens_out").asInt(), "class token and a 2x2 grid");
    assertEquals(5 * 32, JSON.readTree(r.out()).get("bytes_per_image").asLong());
    assertTrue(evalBundle(pooled, model).get("agreement").asDouble() > 0.3);
    CliRun b = CliRun.of("bench", "--bundle", pooled.toString(), "--runs", "3", "--json");
    assertEquals(0, b.exitCode(), b.err());
    JsonNode j = JSON.readTree(b.out());
    assertTrue(j.get("device_median_millis").asDouble() > 0 && j.get("cloud_median_millis").asDouble() > 0);
    assertEquals(5 * 32, j.get("bytes_per_image").asLong());
  }

  @Test
  void badSplitsAndTamperedBundlesAreUserErrors(@TempDir Path dir) throws Exception {
    Path bundle = dir.resolve("bundle");
    for (String[] bad : List.of(new String[] {"--split", "0"}, new String[] {"--split", "3"},
        new String[] {"--split", "1", "--keep-tokens", "1.5"},
        new String[] {"--split", "1", "--keep-tokens", "0.5", "--pool", "2"},
        new String[] {"--split", "1", "--pool", "3"}, new String[] {"--split", "1", "--fuse"},
        new String[] {"--split", "1", "--cloud-precision", "fp16"},
        new String[] {"--split", "1", "--merge", "9"}, new String[] {"--split", "1", "--merge", "2", "--pool", "2"},
        new String[] {"--split", "1", "--max-bytes", "8"},
        new String[] {"--split", "1", "--max-bytes", "200", "--keep-tokens", "0.5"},
        new String[] {"--split", "1", "--format", "tflite"})) {
      CliRun r = export(bundle, bad);
      assertEquals(1, r.exitCode(), String.join(" ", bad) + ": " + r.err());
      assertTrue(r.err().startsWith("vitq: "), r.err());
      assertEquals(1, r.err().strip().lines().count(), r.err());
      assertFalse(Files.exists(bundle), "no partial bundle");
    }
    assertEquals(0, export(bundle, "--split", "1").exitCode());
    Files.write(bundle.resolve("cloud.onnx"), new byte[] {1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
    CliRun e = CliRun.of("eval", "--bundle", bundle.toString(), "--data", images.toString(), "-q");
    assertEquals(1, e.exitCode());
    assertTrue(e.err().contains("does not match the SHA-256"), e.err());
    e = CliRun.of("bench", "--bundle", images.toString());
    assertEquals(1, e.exitCode());
    assertTrue(e.err().contains("is not a vitq bundle"), e.err());
  }

  @Test
  void tomeMergingSendsFewerTokensTheCloudAccepts(@TempDir Path dir) throws Exception {
    Path merged = dir.resolve("merged");
    CliRun r = export(merged, "--split", "2", "--merge", "8");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals(9, JSON.readTree(r.out()).get("tokens_out").asInt(), "class token, 8 - 8 kept of A, all 8 of B");
    assertEquals("merge", JSON.readTree(r.out()).get("reduction").asText());
    assertTrue(evalBundle(merged, model).get("agreement").asDouble() > 0.3);
  }

  @Test
  void maxBytesFitsTheBoundaryAndTheManifestSaysHowToUnpackIt(@TempDir Path dir) throws Exception {
    // 17 tokens of width 32: 544 bytes at the plan's 8-bit levels; 200 bytes forces fewer tokens, fewer components
    // or fewer bits.
    Path bundle = dir.resolve("fit");
    CliRun r = export(bundle, "--split", "2", "--max-bytes", "200");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = JSON.readTree(r.out());
    long bytes = j.get("bytes_per_image").asLong();
    assertTrue(bytes <= 200 && bytes > 0, "bytes per image " + bytes);
    assertTrue(j.get("tried").size() >= 6, "every reduction at several bit widths: " + j.get("tried"));
    JsonNode m = JSON.readTree(bundle.resolve("manifest.json").toFile());
    JsonNode boundary = m.get("boundary");
    assertEquals(bytes, boundary.get("bytes_per_image").asLong());
    assertEquals(bytes, (long) boundary.get("tokens").asInt() * boundary.get("bytes_per_token").asInt());
    JsonNode coding = boundary.get("coding");
    int components = coding.get("components").asInt();
    int bits = coding.get("bits").asInt();
    assertEquals(boundary.get("bytes_per_token").asInt() * 8, components * bits);
    assertEquals(components, coding.get("scale").size());
    assertEquals(components, coding.get("offset").size());
    Model device = OnnxReader.read(bundle.resolve("device.onnx"));
    assertEquals(1, device.graph().outputs().size(), "only the packed codes leave the device");
    assertEquals(DType.UINT8, device.graph().outputs().get(0).type().dtype());
    assertEquals(boundary.get("bytes_per_token").asLong(), device.graph().outputs().get(0).type().shape().get(2)
        .size());
    JsonNode e = evalBundle(bundle, model);
    assertTrue(e.get("agreement").asDouble() > 0.3, e.toString());
    // The choice and the files are deterministic.
    Path again = dir.resolve("again");
    assertEquals(0, export(again, "--split", "2", "--max-bytes", "200").exitCode());
    for (String f : List.of("device.onnx", "cloud.onnx", "manifest.json")) {
      assertTrue(java.util.Arrays.equals(Files.readAllBytes(bundle.resolve(f)), Files.readAllBytes(again.resolve(f))),
          f + " differs between two runs");
    }
    CliRun none = export(dir.resolve("none"), "--split", "2", "--max-bytes", "10");
    assertEquals(1, none.exitCode());
    assertTrue(none.err().contains("No boundary coding fits 10 bytes"), none.err());
  }

  @Test
  void ortBundlesListEveryFileAndRunTheOrtHalves(@TempDir Path dir) throws Exception {
    Path onnx = dir.resolve("onnx");
    Path both = dir.resolve("both");
    assertEquals(0, export(onnx, "--split", "2").exitCode());
    CliRun r = export(both, "--split", "2", "--format", "both");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode files = JSON.readTree(both.resolve("manifest.json").toFile()).get("files");
    for (String f : List.of("device.onnx", "cloud.onnx", "device.ort", "cloud.ort", "required_operators.config")) {
      assertTrue(files.has(f), f + " listed");
      assertEquals(Files.size(both.resolve(f)), files.get(f).get("bytes").asLong(), f);
    }
    assertEquals("ort", files.get("device.ort").get("format").asText());
    assertEquals("required-operators", files.get("required_operators.config").get("format").asText());
    String ops = Files.readString(both.resolve("required_operators.config"));
    for (String line : ops.lines().filter(l -> !l.startsWith("#")).toList()) {
      assertTrue(line.matches("[a-z.]+;\\d+;[A-Za-z0-9]+(,[A-Za-z0-9]+)*"), "domain;opset;ops: " + line);
    }
    assertTrue(ops.contains("ai.onnx;17;") && ops.contains("QuantizeLinear"), ops);
    // The ORT halves compute what the ONNX halves do: the same classes on every image.
    JsonNode fromOrt = evalBundle(both, model);
    JsonNode fromOnnx = evalBundle(onnx, model);
    assertEquals(fromOnnx.get("agreement").asDouble(), fromOrt.get("agreement").asDouble());
    assertEquals(fromOnnx.get("top1").asDouble(), fromOrt.get("top1").asDouble());
    CliRun b = CliRun.of("bench", "--bundle", both.toString(), "--runs", "3", "--json");
    assertEquals(0, b.exitCode(), b.err());
    Files.write(both.resolve("device.ort"), new byte[] {1}, java.nio.file.StandardOpenOption.APPEND);
    CliRun e = CliRun.of("eval", "--bundle", both.toString(), "--data", images.toString(), "-q");
    assertEquals(1, e.exitCode());
    assertTrue(e.err().contains("device.ort does not match the SHA-256"), e.err());
  }

  @Test
  void quantizeWritesOrtFilesThatEvalAndBenchRun(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("q.onnx");
    CliRun q = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--seed", "3", "--format",
        "both", "-o", out.toString(), "-q");
    assertEquals(0, q.exitCode(), q.err());
    Path ort = dir.resolve("q.ort");
    assertTrue(Files.size(ort) > 0);
    assertTrue(Files.readString(dir.resolve("q.required_operators.config")).contains("com.microsoft;1;"));
    CliRun e = CliRun.of("eval", ort.toString(), "--data", images.toString(), "--ref", out.toString(), "--json", "-q");
    assertEquals(0, e.exitCode(), e.err());
    assertEquals(1.0, JSON.readTree(e.out()).get("agreement").asDouble(), "the ORT file predicts as the ONNX file");
    CliRun b = CliRun.of("bench", ort.toString(), "--runs", "3", "--json");
    assertEquals(0, b.exitCode(), b.err());
    CliRun only = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--seed", "3", "--format",
        "ort", "-o", dir.resolve("only.onnx").toString(), "-q");
    assertEquals(0, only.exitCode(), only.err());
    assertTrue(Files.exists(dir.resolve("only.ort")));
    assertFalse(Files.exists(dir.resolve("only.onnx")), "--format ort writes no ONNX file");
    CliRun missing = CliRun.of("bench", dir.resolve("absent.ort").toString(), "--runs", "3");
    assertEquals(1, missing.exitCode());
    assertEquals(1, missing.err().strip().lines().count(), missing.err());
    Files.write(dir.resolve("broken.ort"), new byte[] {1, 2, 3});
    CliRun broken = CliRun.of("eval", dir.resolve("broken.ort").toString(), "--data", images.toString(), "-q");
    assertEquals(1, broken.exitCode());
    assertTrue(broken.err().startsWith("vitq: ") && broken.err().strip().lines().count() == 1, broken.err());
  }
}
