package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.quantizer.QuantPlan;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quantize --search evolq} on a small built model and synthetic images. */
class SearchCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    images = CliFixtures.images(shared.resolve("images"), 32, 3, 8, 1);
  }

  private static CliRun search(Path out, String... extra) {
    List<String> args = new ArrayList<>(List.of("quantize", model.toString(), "--calib", images.toString(),
        "--scheme", "w4a8", "--search", "evolq", "--population", "4", "--generations", "2", "--search-batch", "12",
        "--validation", "6", "--held-out", "6", "-o", out.toString(), "-q"));
    args.addAll(List.of(extra));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void searchWritesTheModelPlanAndReport(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("w4a8.onnx");
    Path report = dir.resolve("report");
    CliRun r = search(out, "--json", "--report", report.toString(), "--plan-out", dir.resolve("plan.json").toString());
    assertEquals(0, r.exitCode(), r.err());
    JsonNode s = JSON.readTree(r.out()).get("search_report");
    assertEquals("evolq", JSON.readTree(r.out()).get("search").asText());
    assertEquals(2, s.get("block_visits").asInt());
    assertEquals(12, s.get("search_images").asInt());
    assertEquals(6, s.get("held_out_images").asInt());
    assertTrue(s.get("loss_after").asDouble() <= s.get("loss_before").asDouble());
    assertTrue(s.get("cost_ratio").asDouble() > 0);
    assertEquals("tensor", s.get("genes").asText());
    assertEquals("blends", s.get("inputs").asText());
    assertEquals("evolq", QuantPlan.fromJson(Files.readString(dir.resolve("plan.json"))).search());
    JsonNode j = JSON.readTree(report.resolve("report.json").toFile());
    assertEquals(2, j.get("blocks").size());
    assertEquals(2, j.get("blocks").get(0).get("best_per_generation").size());
    BufferedImage png = ImageIO.read(report.resolve("report.png").toFile());
    assertTrue(png.getWidth() > 0 && png.getHeight() > png.getWidth(), "three charts stacked");
    assertFalse(Files.exists(dir.resolve("w4a8.onnx.evolq-state.json")), "a finished search leaves no state");
  }

  @Test
  void sameSeedGivesTheSameSearchedModel(@TempDir Path dir) throws Exception {
    Path a = dir.resolve("a.onnx");
    Path b = dir.resolve("b.onnx");
    assertEquals(0, search(a, "--seed", "3").exitCode());
    assertEquals(0, search(b, "--seed", "3").exitCode());
    assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
  }

  @Test
  void badSearchOptionsAreUserErrors(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    for (String[] bad : List.of(new String[] {"--objective", "hinge"}, new String[] {"--block-order", "sideways"},
        new String[] {"--strategy", "annealing"}, new String[] {"--genes", "neuron"}, new String[] {"--passes", "0"},
        new String[] {"--search-inputs", "photos"},
        new String[] {"--temperature", "0"})) {
      CliRun r = search(out, bad);
      assertEquals(1, r.exitCode(), String.join(" ", bad) + ": " + r.err());
      assertTrue(r.err().startsWith("vitq: "), r.err());
      assertEquals(1, r.err().strip().lines().count(), r.err());
      assertFalse(Files.exists(out));
    }
  }

  @Test
  void resumingAnotherModelsSearchIsRefused(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    Files.writeString(dir.resolve("out.onnx.evolq-state.json"), """
        {"format": "vitq-evolq-state/2", "model_sha256": "0000", "settings": null, "completed_steps": 1,
         "plan": {"format": "vitq-plan/1", "model_sha256": "0000", "scheme": "W4A8", "method": "MSE",
                  "search": "none", "seed": 0, "calibration_images": 1, "entries": []},
         "blocks": [], "held_out_before": null, "search_seconds": 1.0}
        """);
    CliRun r = search(out, "--resume");
    assertEquals(1, r.exitCode(), r.err());
    assertTrue(r.err().contains("The saved search state is for another model"), r.err());
    assertFalse(Files.exists(out));
    Files.writeString(dir.resolve("out.onnx.evolq-state.json"), "{ not json");
    r = search(out, "--resume");
    assertEquals(1, r.exitCode(), r.err());
    assertTrue(r.err().startsWith("vitq: The saved search state is not valid"), r.err());
  }
}
