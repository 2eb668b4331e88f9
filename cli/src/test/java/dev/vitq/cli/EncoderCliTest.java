package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Encoders without a classifier (DINOv2-like, EVA-02-like, SigLIP-like, built by {@code models build}) through the
 * command line: recognised by roles in {@code inspect}, quantized on the transformer path, measured by what an
 * embedding user cares about in {@code eval}.
 */
class EncoderCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static Path images;

  @BeforeAll
  static void images() throws Exception {
    images = CliFixtures.images(dir.resolve("images"), 32, 3, 6, 11);
  }

  private static Path build(String name, String... features) {
    Path model = dir.resolve(name + ".onnx");
    String[] base = {"models", "build", "--image-size", "32", "--patch", "8", "--width", "32", "--depth", "2",
        "--heads", "2", "--seed", "5", "-o", model.toString()};
    String[] args = new String[base.length + features.length];
    System.arraycopy(base, 0, args, 0, base.length);
    System.arraycopy(features, 0, args, base.length, features.length);
    CliRun built = CliRun.of(args);
    assertEquals(0, built.exitCode(), built.err());
    return model;
  }

  @ParameterizedTest
  @ValueSource(strings = {"dinov2", "eva02", "siglip"})
  void anEmbeddingEncoderIsQuantizedByRolesAndMeasuredByCosine(String family) throws Exception {
    Path model = switch (family) {
      case "dinov2" -> build(family, "--head", "pooled", "--registers", "4", "--layer-scale");
      case "eva02" -> build(family, "--head", "pooled", "--swiglu", "--rotary");
      default -> build(family, "--head", "attention-pool");
    };
    CliRun inspect = CliRun.of("inspect", model.toString());
    assertEquals(0, inspect.exitCode(), inspect.err());
    assertTrue(inspect.out().contains("ViT: recognised: 2 blocks") && inspect.out().contains("embedding output"),
        inspect.out());
    assertTrue(inspect.out().contains(switch (family) {
      case "dinov2" -> "layer-scale";
      case "eva02" -> "mlp (swiglu)";
      default -> "attention pool";
    }), inspect.out());

    Path out = dir.resolve(family + "-w8a8.onnx");
    CliRun q = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--scheme", "w8a8", "--json",
        "-q", "-o", out.toString());
    assertEquals(0, q.exitCode(), q.err());
    assertTrue(!q.out().contains("not a transformer encoder") && !q.err().contains("generically"),
        "the transformer path, not the generic one: " + q.out() + q.err());

    CliRun eval = CliRun.of("eval", out.toString(), "--ref", model.toString(), "--data", images.toString(),
        "--json", "-q");
    assertEquals(0, eval.exitCode(), eval.err());
    JsonNode e = JSON.readTree(eval.out()).get("embedding");
    assertTrue(e != null && !e.isNull(), "an embedding model is measured as one: " + eval.out());
    assertTrue(e.get("cosine_mean").asDouble() > 0.99, eval.out());
    assertTrue(e.get("cosine_p1").asDouble() <= e.get("cosine_mean").asDouble(), eval.out());
    double retrieval = e.get("retrieval_agreement").asDouble();
    assertTrue(retrieval >= 0 && retrieval <= 1, eval.out());
    assertTrue(e.get("nearest_neighbour_accuracy").isNumber(), "the images have labels");
    assertTrue(JSON.readTree(eval.out()).get("top1").isNull(), "no top-1 of an embedding's arg-max");

    // The reference against itself: every output identical, every neighbour the same.
    CliRun self = CliRun.of("eval", model.toString(), "--ref", model.toString(), "--data", images.toString(), "-q");
    assertEquals(0, self.exitCode(), self.err());
    assertTrue(self.out().contains("(an embedding)") && self.out().contains("mean 1.00000")
        && self.out().contains("retrieval agreement 1.0000"), self.out());
  }
}
