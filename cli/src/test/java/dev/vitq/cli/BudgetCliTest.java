package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.Model;
import dev.vitq.models.Tensor;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Scheme;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quantize --max-drop D --val DIR}: the accuracy budget on a small built ViT and images made here. */
class BudgetCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path model;
  static Path calib;
  static Path labelled;
  static Path flat;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    calib = CliFixtures.images(shared.resolve("calib"), 32, 3, 8, 1);
    labelled = CliFixtures.images(shared.resolve("labelled"), 32, 3, 8, 2);
    // A flat folder: no labels, so the drop is in agreement with the float model's top-1.
    flat = CliFixtures.images(shared.resolve("flat"), 32, 1, 48, 3).resolve("class0");
  }

  private static CliRun quantize(Path model, Path out, String... extra) {
    List<String> args = new ArrayList<>(List.of("quantize", model.toString(), "--calib", calib.toString(),
        "-o", out.toString(), "-q"));
    args.addAll(List.of(extra));
    return CliRun.of(args.toArray(String[]::new));
  }

  /** The integer weight initializers of a deployed model, by name. */
  private static Map<String, Tensor> intWeights(Model m) {
    Map<String, Tensor> out = new HashMap<>();
    for (Tensor t : m.graph().initializers()) {
      if (t.name().endsWith("_int8") || t.name().endsWith("_int4")) {
        out.put(t.name(), t);
      }
    }
    return out;
  }

  @Test
  void aBudgetW4a4MissesIsMetByRaisingTheNamedPartsByteIdentically(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("q.onnx");
    Path plan = dir.resolve("plan.json");
    Path report = dir.resolve("report");
    CliRun r = quantize(model, out, "--scheme", "w4a4", "--max-drop", "0.05", "--val", flat.toString(), "--json",
        "--plan-out", plan.toString(), "--report", report.toString());
    assertEquals(0, r.exitCode(), r.err());
    JsonNode b = JSON.readTree(r.out()).get("budget");
    assertEquals("agreement", b.get("measure").asText());
    assertEquals(48, b.get("images").asInt());
    assertEquals("w4a4", b.get("start").asText());
    assertTrue(b.get("start_drop").asDouble() > 0.05, "W4A4 misses the budget: " + b);
    assertTrue(b.get("drop").asDouble() <= 0.05, "the raised model meets it: " + b);
    JsonNode raised = b.get("raised");
    assertTrue(raised.size() >= 1);
    for (JsonNode x : raised) {
      assertTrue(x.get("part").asText().matches("embedding|block [12]|head"), x.toString());
      assertTrue(x.get("to").asText().matches("activations to 8 bits|weights to 8 bits|float"), x.toString());
    }
    JsonNode last = raised.get(raised.size() - 1);
    assertEquals(b.get("drop").asDouble(), last.get("drop").asDouble());
    assertEquals(Files.size(out), b.get("bytes").asLong(), "the bytes measured are the file's");
    assertEquals(Files.size(out), last.get("bytes").asLong());
    assertEquals(1 + 1 + raised.size(), b.get("evaluations").asInt(), "the float pass, the start, one per raise");
    QuantPlan p = QuantPlan.fromJson(Files.readString(plan));
    assertEquals(Scheme.AUTO, p.scheme(), "a plan with raised parts is mixed");
    assertEquals("budget", p.search());
    assertTrue(Files.readString(report.resolve("report.html")).contains("Accuracy budget"));

    // The console names each part raised and the drop.
    Path again = dir.resolve("again.onnx");
    CliRun human = quantize(model, again, "--scheme", "w4a4", "--max-drop", "0.05", "--val", flat.toString());
    assertEquals(0, human.exitCode(), human.err());
    assertTrue(human.out().contains(last.get("part").asText() + " " + last.get("to").asText()), human.out());
    assertTrue(human.out().contains(String.format("drop %.4f", b.get("drop").asDouble())), human.out());
    assertArrayEquals(Files.readAllBytes(out), Files.readAllBytes(again), "same inputs and seed, same file");
  }

  @Test
  void aBudgetMetAtTheStartShipsTheSchemesLevelsAndMeasuresTop1OnLabelledImages(@TempDir Path dir)
      throws Exception {
    Path plain = dir.resolve("w4a4.onnx");
    assertEquals(0, quantize(model, plain, "--scheme", "w4a4").exitCode());
    Path out = dir.resolve("q.onnx");
    CliRun r = quantize(model, out, "--scheme", "w4a4", "--max-drop", "0.9", "--val", labelled.toString(),
        "--val-limit", "12", "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode b = JSON.readTree(r.out()).get("budget");
    assertEquals("top-1", b.get("measure").asText());
    assertEquals(12, b.get("images").asInt(), "--val-limit bounds the held-out images");
    double top1 = b.get("float_score").asDouble();
    assertTrue(top1 >= 0 && top1 <= 1);
    assertEquals(top1 - b.get("start_score").asDouble(), b.get("start_drop").asDouble(), 1e-12);
    assertEquals(0, b.get("raised").size());
    // The starting point is W4A4 itself: the same integer weights as --scheme w4a4 ships.
    Map<String, Tensor> mine = intWeights(OnnxReader.read(out));
    Map<String, Tensor> theirs = intWeights(OnnxReader.read(plain));
    assertEquals(theirs.keySet(), mine.keySet());
    for (Map.Entry<String, Tensor> w : theirs.entrySet()) {
      assertEquals(w.getValue().data(), mine.get(w.getKey()).data(), w.getKey());
    }
  }

  @Test
  void anUnreachableBudgetIsOneSentenceAndWritesNothing(@TempDir Path dir) throws Exception {
    // An embedding model: the drop is 1 minus the mean cosine, which no quantized part brings to 0.
    Path encoder = dir.resolve("encoder.onnx");
    CliRun built = CliRun.of("models", "build", "--image-size", "32", "--patch", "8", "--width", "32", "--depth",
        "2", "--heads", "2", "--seed", "5", "--head", "pooled", "-o", encoder.toString());
    assertEquals(0, built.exitCode(), built.err());
    Path out = dir.resolve("q.onnx");
    Path plan = dir.resolve("plan.json");
    Path report = dir.resolve("report");
    CliRun r = quantize(encoder, out, "--scheme", "w4a4", "--max-drop", "0", "--val", flat.toString(), "--plan-out",
        plan.toString(), "--report", report.toString());
    r.assertUserError("The accuracy budget --max-drop 0.0 cannot be met: after raising every part it could", out);
    assertTrue(r.err().contains("mean cosine"), r.err());
    assertFalse(Files.exists(plan));
    assertFalse(Files.exists(report));
  }

  @Test
  void withSchemeAutoTheChosenPointIsRaisedWithinTheBytes(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("q.onnx");
    CliRun r = quantize(model, out, "--scheme", "auto", "--auto-population", "6", "--auto-generations", "2",
        "--max-bytes", "1000000000", "--max-drop", "0.05", "--val", flat.toString(), "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = JSON.readTree(r.out());
    JsonNode b = j.get("budget");
    assertEquals(j.get("auto").get("shipped").asText(), b.get("start").asText());
    assertTrue(b.get("drop").asDouble() <= 0.05, b.toString());
    assertEquals(Files.size(out), b.get("bytes").asLong());
  }

  @Test
  void optionsThatDoNotGoTogetherAreUserErrors(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("q.onnx");
    quantize(model, out, "--scheme", "w4a4", "--max-drop", "0.01").assertUserError("pass --val DIR", out);
    quantize(model, out, "--val", flat.toString()).assertUserError("pass --max-drop D too", out);
    quantize(model, out, "--max-drop", "-0.1", "--val", flat.toString()).assertUserError("at least 0", out);
    quantize(model, out, "--max-drop", "0.01", "--val", calib.toString())
        .assertUserError("--val shares 24 of its 24 images with --calib", out);
    quantize(model, out, "--max-drop", "0.01", "--val", flat.toString(), "--search", "evolq")
        .assertUserError("run them one at a time", out);
    quantize(model, out, "--max-drop", "0.01", "--val", flat.toString(), "--quantizers", "none")
        .assertUserError("leave out --quantizers", out);
  }
}
