package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.RealExports;
import dev.vitq.models.onnx.OnnxReader;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/** Every real-exporter fixture through {@code inspect}, {@code quantize} and {@code eval}, as a new user runs them. */
class RealExportsCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** The fixtures carry no preprocessing metadata, as exports do not: the user says it. */
  private static final List<String> PREPROCESS = List.of("--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5");

  @TempDir static Path shared;
  static Path images;

  @BeforeAll
  static void images() throws Exception {
    images = CliFixtures.images(shared.resolve("images"), 32, 2, 8, 4);
  }

  @ParameterizedTest
  @FieldSource("dev.vitq.models.RealExports#ALL")
  void everyExportInspectsQuantizesAndStillAgreesWithItself(String name, @TempDir Path dir) throws Exception {
    Path model = RealExports.copy(name, dir);
    boolean vit = !name.equals(RealExports.SWIN);

    CliRun inspected = CliRun.of("inspect", model.toString(), "--json");
    assertEquals(0, inspected.exitCode(), inspected.err());
    assertEquals(vit, JSON.readTree(inspected.out()).get("recognised").asBoolean(), inspected.out());

    Path out = dir.resolve(name + ".w8a8.onnx");
    List<String> args = new java.util.ArrayList<>(List.of("quantize", model.toString(), "--calib",
        images.toString(), "-o", out.toString(), "--json", "-q"));
    args.addAll(PREPROCESS);
    CliRun q = CliRun.of(args.toArray(String[]::new));
    assertEquals(0, q.exitCode(), q.err());
    JsonNode report = JSON.readTree(q.out());
    assertEquals(vit, report.get("recognised").asBoolean());
    assertTrue(report.get("quantized_tensors").asInt() > 0);

    Model quantized = OnnxReader.read(out);
    Model original = OnnxReader.read(model);
    assertEquals(original.graph().inputs().get(0).type().dtype(), quantized.graph().inputs().get(0).type().dtype(),
        "the input keeps its element type");
    assertTrue(quantized.graph().initializers().stream().anyMatch(t -> t.dtype() == DType.INT8), "int8 weights");
    assertFalse(quantized.graph().initializers().stream().anyMatch(t -> t.name().startsWith("onnx::MatMul")
        && t.dtype() == DType.FLOAT), "no float MatMul weight left");

    List<String> eval = new java.util.ArrayList<>(List.of("eval", out.toString(), "--data", images.toString(),
        "--ref", model.toString(), "--json", "-q"));
    eval.addAll(PREPROCESS);
    CliRun e = CliRun.of(eval.toArray(String[]::new));
    assertEquals(0, e.exitCode(), e.err());
    JsonNode measured = JSON.readTree(e.out());
    if (measured.get("embedding").isNull()) {
      assertTrue(measured.get("agreement").asDouble() >= 0.8, name + ": " + e.out());
    } else {
      // CLIP's tower ends in a projection: an embedding, measured by its output cosine with the float model's.
      assertTrue(name.startsWith("clip"), name + " is a classifier: " + e.out());
      assertTrue(measured.get("embedding").get("cosine_mean").asDouble() >= 0.99, name + ": " + e.out());
    }
  }
}
