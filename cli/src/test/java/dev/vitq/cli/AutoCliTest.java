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
import dev.vitq.quantizer.PlanEntry;
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

/** {@code quantize --scheme auto}: the mixed-precision search, its budgets and its refusals. */
class AutoCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    images = CliFixtures.images(shared.resolve("images"), 32, 3, 8, 1);
  }

  private static CliRun auto(Path out, String... extra) {
    List<String> args = new ArrayList<>(List.of("quantize", model.toString(), "--calib", images.toString(),
        "-o", out.toString(), "-q", "--scheme", "auto", "--auto-population", "6", "--auto-generations", "3"));
    args.addAll(List.of(extra));
    return CliRun.of(args.toArray(String[]::new));
  }

  /** The integer weight initializers of a deployed model, 8-bit and packed 4-bit, by name. */
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
  void shipsTheMostAccurateFrontPointWithinTheBudgetByteIdenticallyAndReportsTheFront(@TempDir Path dir)
      throws Exception {
    Path out = dir.resolve("all.onnx");
    Path plan = dir.resolve("all.json");
    CliRun r = auto(out, "--max-bytes", "1000000000", "--json", "--plan-out", plan.toString(), "--report",
        dir.resolve("report").toString());
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = JSON.readTree(r.out());
    assertEquals("auto", j.get("scheme").asText());
    JsonNode auto = j.get("auto");
    JsonNode front = auto.get("front");
    assertTrue(front.size() >= 1);
    assertEquals(4, auto.get("uniform").size());
    JsonNode shipped = null;
    for (JsonNode p : front) {
      assertTrue(p.get("within_budget").asBoolean());
      assertTrue(p.get("latency_millis").asDouble() > 0);
      double a = p.get("held_out_agreement").asDouble();
      if (shipped == null || a > shipped.get("held_out_agreement").asDouble()
          || (a == shipped.get("held_out_agreement").asDouble() && p.get("loss").asDouble()
              < shipped.get("loss").asDouble())) {
        shipped = p;
      }
    }
    assertEquals(shipped.get("name").asText(), auto.get("shipped").asText(),
        "the highest held-out agreement ships, then the lowest loss");
    // The front's bytes are the real file's.
    assertEquals(Files.size(out), shipped.get("bytes").asLong());
    assertEquals(Files.size(out), j.get("bytes").asLong());
    QuantPlan p = QuantPlan.fromJson(Files.readString(plan));
    assertEquals(Scheme.AUTO, p.scheme());
    assertEquals("auto", p.search());
    String html = Files.readString(dir.resolve("report").resolve("report.html"));
    assertTrue(html.contains("Pareto"), "the front is drawn");

    // The point shipped takes GPTQ's weight levels: its weights differ from the nearest rounding of its own plan,
    // which export --plan gives without calibration images (the cloud half holds the blocks after the first).
    Path nearest = dir.resolve("nearest");
    CliRun x = CliRun.of("export", model.toString(), "--plan", plan.toString(), "--split", "1", "-o",
        nearest.toString(), "-q");
    assertEquals(0, x.exitCode(), x.err());
    Map<String, Tensor> shippedWeights = intWeights(OnnxReader.read(out));
    Map<String, Tensor> nearestWeights = intWeights(OnnxReader.read(nearest.resolve("cloud.onnx")));
    assertFalse(nearestWeights.isEmpty());
    boolean differs = false;
    for (Map.Entry<String, Tensor> w : nearestWeights.entrySet()) {
      Tensor mine = shippedWeights.get(w.getKey());
      assertEquals(w.getValue().dims(), mine.dims(), w.getKey());
      differs |= !mine.data().equals(w.getValue().data());
    }
    assertTrue(differs, "GPTQ moved some levels off nearest rounding");

    Path again = dir.resolve("again.onnx");
    assertEquals(0, auto(again, "--max-bytes", "1000000000").exitCode());
    assertArrayEquals(Files.readAllBytes(out), Files.readAllBytes(again), "same seed, same model");

    // A budget of exactly the smallest front point ships it: the budget is on the real file's bytes.
    long smallest = Long.MAX_VALUE;
    for (JsonNode f : front) {
      smallest = Math.min(smallest, f.get("bytes").asLong());
    }
    Path tight = dir.resolve("tight.onnx");
    CliRun t = auto(tight, "--max-bytes", Long.toString(smallest), "--json");
    assertEquals(0, t.exitCode(), t.err());
    assertEquals(smallest, Files.size(tight));
    for (JsonNode f : JSON.readTree(t.out()).get("auto").get("front")) {
      assertEquals(f.get("bytes").asLong() <= smallest, f.get("within_budget").asBoolean());
    }
    auto(dir.resolve("under.onnx"), "--max-bytes", Long.toString(smallest - 1)).assertUserError(
        "No mixed-precision point fits", dir.resolve("under.onnx"));
  }

  @Test
  void aMixedPlanCarriesEachEntrysBits(@TempDir Path dir) throws Exception {
    Path plan = dir.resolve("plan.json");
    // Evol-Q's loss options apply: here KL of the float softmax to the quantized one.
    CliRun r = auto(dir.resolve("m.onnx"), "--max-bytes", "1000000000", "--plan-out", plan.toString(), "--objective",
        "kl", "--json");
    assertEquals(0, r.exitCode(), r.err());
    CliRun infoNce = auto(dir.resolve("i.onnx"), "--max-bytes", "1000000000", "--json");
    assertEquals(0, infoNce.exitCode(), infoNce.err());
    double kl = JSON.readTree(r.out()).get("auto").get("uniform").get(0).get("loss").asDouble();
    double nce = JSON.readTree(infoNce.out()).get("auto").get("uniform").get(0).get("loss").asDouble();
    assertTrue(kl >= 0 && kl != nce, "W8A8 scored by KL " + kl + ", by InfoNCE " + nce);
    QuantPlan p = QuantPlan.fromJson(Files.readString(plan));
    for (PlanEntry e : p.entries()) {
      int bits = e.quantizer().bits();
      assertTrue(bits == 4 || bits == 6 || bits == 8, e.toString());
    }
  }

  @Test
  void anInfeasibleBudgetSaysTheSmallestSizeAndWritesNothing(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    Path plan = dir.resolve("plan.json");
    Path report = dir.resolve("report");
    CliRun r = auto(out, "--max-bytes", "1000", "--plan-out", plan.toString(), "--report", report.toString());
    r.assertUserError("No mixed-precision point fits in 1,000 bytes: the smallest the search reached is ", out);
    assertFalse(Files.exists(plan));
    assertFalse(Files.exists(report));
    CliRun slow = auto(out, "--max-bytes", "1000000000", "--max-latency-ms", "0.000001");
    slow.assertUserError("and the fastest", out);
  }

  @Test
  void budgetsAndSearchesThatDoNotGoTogetherAreUserErrors(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out.onnx");
    CliRun.of("quantize", model.toString(), "--calib", images.toString(), "-o", out.toString(),
        "--max-bytes", "5000000").assertUserError("pass --scheme auto too", out);
    auto(out).assertUserError("--scheme auto needs --max-bytes", out);
    auto(out, "--max-bytes", "5000000", "--search", "evolq").assertUserError("run them one at a time", out);
    auto(out, "--max-bytes", "5000000", "--quantizers", "none").assertUserError("leave out --quantizers", out);
    auto(out, "--max-bytes", "5000000", "--max-latency-ms", "-1").assertUserError("must be positive", out);
  }
}
