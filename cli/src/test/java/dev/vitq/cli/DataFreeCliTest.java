package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.onnx.OnnxReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code quantize --scheme w8-dynamic} and {@code --scheme fp16}: written without calibration images, for a built ViT,
 * a model that is not one, and the embedded demo; measured by {@code eval} against the float model.
 */
class DataFreeCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    images = CliFixtures.images(shared.resolve("images"), 32, 3, 8, 2);
  }

  @Test
  void bothSchemesNeedNoImagesAgreeWithFloatAndStoreNarrowWeights(@TempDir Path dir) throws Exception {
    long floatBytes = Files.size(model);
    for (String scheme : List.of("w8-dynamic", "fp16")) {
      Path out = dir.resolve(scheme + ".onnx");
      CliRun r = CliRun.of("quantize", model.toString(), "--scheme", scheme, "-o", out.toString(), "--json", "-q");
      assertEquals(0, r.exitCode(), r.err());
      JsonNode j = JSON.readTree(r.out());
      assertEquals(scheme, j.get("scheme").asText());
      assertEquals(0, j.get("calibration_images").asInt());
      Model q = OnnxReader.read(out);
      assertTrue(q.metadata("vitq").orElseThrow().contains("\"scheme\":\"" + scheme + "\""));
      double ratio = (double) Files.size(out) / floatBytes;
      if (scheme.equals("fp16")) {
        assertTrue(ratio > 0.45 && ratio < 0.55, "fp16 is half the float file: " + ratio);
        assertTrue(q.graph().initializers().stream().filter(t -> t.elementCount() > 1)
            .allMatch(t -> t.dtype() != DType.FLOAT), "no float32 weight left");
      } else {
        // At width 32 the float parts (patch embedding, position embedding, biases, norms) are half the file.
        assertTrue(ratio < 0.55, "w8-dynamic shrinks the file: " + ratio);
        assertTrue(q.graph().initializers().stream().anyMatch(t -> t.dtype() == DType.INT8));
        assertTrue(q.graph().initializers().stream().noneMatch(t -> t.name().endsWith("qkv.weight")
            || t.name().endsWith("fc1.weight") || t.name().endsWith("fc2.weight")), "no float linear weight left");
        assertEquals(2 * 4 + 1, q.graph().nodes().stream().filter(n -> n.opType().equals("DynamicQuantizeMatMul"))
            .count(), "qkv, projection, fc1, fc2 per block, and the head");
      }
      CliRun e = CliRun.of("eval", out.toString(), "--data", images.toString(), "--ref", model.toString(), "--json",
          "-q");
      assertEquals(0, e.exitCode(), e.err());
      double agreement = JSON.readTree(e.out()).get("agreement").asDouble();
      // Seeded random weights leave near ties between logits; DataFreeSchemesTest bounds the cosine.
      assertTrue(agreement >= (scheme.equals("fp16") ? 0.95 : 0.9), scheme + ": " + e.out());

      Path again = dir.resolve(scheme + "-again.onnx");
      assertEquals(0, CliRun.of("quantize", model.toString(), "--scheme", scheme, "-o", again.toString(), "-q")
          .exitCode());
      assertArrayEquals(Files.readAllBytes(out), Files.readAllBytes(again), scheme + " is deterministic");
    }
  }

  @Test
  void calibrationImagesGivenAreSaidNotToBeRead(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("w8.onnx");
    CliRun r = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--scheme", "w8-dynamic", "-o",
        out.toString(), "-q");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.out().startsWith("--calib not read: w8-dynamic is written without calibration images."), r.out());
    Path without = dir.resolve("w8-without.onnx");
    assertEquals(0, CliRun.of("quantize", model.toString(), "--scheme", "w8-dynamic", "-o", without.toString(), "-q")
        .exitCode());
    assertArrayEquals(Files.readAllBytes(without), Files.readAllBytes(out), "the images change nothing");
  }

  @Test
  void theDemoConvertsOnAFreshMachine(@TempDir Path dir) throws Exception {
    for (String scheme : List.of("fp16", "w8-dynamic")) {
      Path out = dir.resolve("demo-" + scheme + ".onnx");
      CliRun r = CliRun.of("quantize", "--scheme", scheme, "-o", out.toString(), "-q");
      assertEquals(0, r.exitCode(), r.err());
      assertTrue(r.out().contains("quantized demo-vit-tiny-32 (" + scheme + ", no calibration)"), r.out());
      assertTrue(Files.isRegularFile(out));
    }
  }

  @Test
  void aModelThatIsNotAViTConvertsToo(@TempDir Path dir) throws Exception {
    Path generic = CliFixtures.notAVit(model, dir);
    for (String scheme : List.of("w8-dynamic", "fp16")) {
      Path out = dir.resolve("generic-" + scheme + ".onnx");
      CliRun r = CliRun.of("quantize", generic.toString(), "--scheme", scheme, "-o", out.toString(), "-q");
      assertEquals(0, r.exitCode(), r.err());
      CliRun e = CliRun.of("eval", out.toString(), "--data", images.toString(), "--ref", generic.toString(), "--json",
          "-q");
      assertEquals(0, e.exitCode(), e.err());
      assertTrue(JSON.readTree(e.out()).get("agreement").asDouble() >= 0.9, scheme + ": " + e.out());
    }
  }

  @Test
  void optionsOfCalibrationAreRefusedInOneSentence(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    CliRun.of("quantize", model.toString(), "--scheme", "fp16", "--search", "evolq", "-o", out.toString())
        .assertUserError("--search evolq searches calibrated scales, and fp16 has none", out);
    CliRun.of("quantize", model.toString(), "--scheme", "w8-dynamic", "--quantizers", "gptq", "-o", out.toString())
        .assertUserError("--quantizers chooses calibrated quantizers", out);
    CliRun.of("quantize", model.toString(), "--scheme", "w8-dynamic", "--plan-out", dir.resolve("p.json").toString(),
        "-o", out.toString()).assertUserError("has no plan", out);
    Path bundle = dir.resolve("bundle");
    CliRun.of("export", model.toString(), "--scheme", "fp16", "--split", "1", "-o", bundle.toString())
        .assertUserError("fp16 is written without calibration", bundle);
  }
}
