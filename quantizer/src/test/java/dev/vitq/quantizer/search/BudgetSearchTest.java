package dev.vitq.quantizer.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Calibrator;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Scheme;
import dev.vitq.quantizer.TestImages;
import dev.vitq.quantizer.search.BudgetSearch.Rung;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The accuracy budget's raising order on a real mixed-precision space, with measures made up so that the outcome is
 * known: a plan's drop is its quantized bits short of 8, summed, and a part's SQNR falls with the same count.
 */
class BudgetSearchTest {
  private static final InferenceSession.Config SESSION = new InferenceSession.Config(1, true);

  @TempDir static Path images;
  static MixedPrecision space;
  static int entries;

  @BeforeAll
  static void calibrate() throws Exception {
    Model model = VitBuilder.build(new VitConfig(32, 8, 3, 32, 3, 2, 64, 5), Spelling.TIMM_17, 11);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    TestImages.write(images, 12);
    ImageDataset data = ImageDataset.open(images, Preprocessing.fromMetadata(model.metadata("preprocess")
        .orElseThrow()));
    var sites = MixedPrecision.sites(vit);
    Calibrator.Result c = Calibrator.calibrate(model, vit.input(), sites, "sha", data,
        new Calibrator.Settings(Scheme.W8A8, Method.MSE, 6, 3, SESSION), Progress.NONE);
    space = MixedPrecision.of(model, vit, sites, "sha", c.stats(), 12, data.preprocessing(), Method.MSE, 3, SESSION);
    entries = space.plan(space.uniform(8, 8)).entries().size();
  }

  /** Bits short of 8 over the plan's entries: 0 at W8A8 or float, most at W4A4. */
  private static int shortBits(QuantPlan plan) {
    return plan.entries().stream().mapToInt(e -> 8 - e.quantizer().bits()).sum();
  }

  /** Bytes made up: a quantized entry costs its bits, a float one 32. */
  private static long bytes(QuantPlan plan) {
    return plan.entries().stream().mapToLong(e -> e.quantizer().bits()).sum()
        + 32L * (entries - plan.entries().size());
  }

  private static final BudgetSearch.Measure MEASURE = (plan, maxBytes) ->
      new BudgetSearch.Measured(bytes(plan), shortBits(plan) / 1000.0, 1 - shortBits(plan) / 1000.0);

  /** Lower for a part with more bits short of 8; block 2 (group 2) loses most by far. */
  private static double sqnr(QuantPlan part) {
    boolean block2 = part.entries().stream().allMatch(e -> e.block() == 1);
    return 60 - shortBits(part) - (block2 ? 100 : 0);
  }

  @Test
  void raisesThePartThatLosesMostRungByRungUntilTheDropIsWithinTheBudget() throws Exception {
    MixedPrecision.Genes w4a4 = space.uniform(4, 4);
    double startDrop = shortBits(space.plan(w4a4)) / 1000.0;
    double budget = startDrop * 0.6;
    List<QuantPlan> measured = new ArrayList<>();
    BudgetSearch.Result r = BudgetSearch.search(space, w4a4, budget, 0, BudgetSearchTest::sqnr, (plan, max) -> {
      measured.add(plan);
      return MEASURE.measure(plan, max);
    }, Progress.NONE);
    assertTrue(r.met());
    assertTrue(r.end().drop() <= budget);
    assertEquals(startDrop, r.start().drop());
    assertEquals(1 + r.steps().size(), r.evaluations(), "one measure per raise, and the start's");
    assertEquals(measured.size(), r.evaluations());
    // Block 2 loses most: its activations go to 8 bits, then its weights, then it goes float, before any other part.
    assertEquals("block 2", r.steps().get(0).part());
    assertEquals(Rung.ACTIVATIONS_8, r.steps().get(0).rung());
    assertEquals(Rung.WEIGHTS_8, r.steps().get(1).rung());
    assertEquals(Rung.FLOAT, r.steps().get(2).rung());
    assertEquals("block 2", r.steps().get(2).part());
    assertTrue(r.floatGroups().contains(2));
    // Every step but the last left the drop over the budget: nothing was raised that was not needed.
    for (int i = 0; i < r.steps().size() - 1; i++) {
      assertTrue(r.steps().get(i).drop() > budget);
    }
    // Each part climbs its rungs in order.
    Map<String, List<Rung>> byPart = new HashMap<>();
    r.steps().forEach(s -> byPart.computeIfAbsent(s.part(), k -> new ArrayList<>()).add(s.rung()));
    for (List<Rung> rungs : byPart.values()) {
      for (int i = 1; i < rungs.size(); i++) {
        assertTrue(rungs.get(i).ordinal() > rungs.get(i - 1).ordinal(), rungs.toString());
      }
    }
    // The plan returned is what was measured last, and it has no entry of a float part.
    assertEquals(measured.get(measured.size() - 1), r.plan());
    for (PlanEntry e : r.plan().entries()) {
      assertFalse(r.floatGroups().contains(space.groupOf(e.block())), e.tensor());
    }
    assertEquals("budget", r.plan().search());
    // Same inputs, same raises.
    BudgetSearch.Result again = BudgetSearch.search(space, w4a4, budget, 0, BudgetSearchTest::sqnr, MEASURE,
        Progress.NONE);
    assertEquals(r.steps(), again.steps());
  }

  @Test
  void aBudgetMetAtTheStartRaisesNothing() throws Exception {
    BudgetSearch.Result r = BudgetSearch.search(space, space.uniform(4, 4), 1, 0, BudgetSearchTest::sqnr, MEASURE,
        Progress.NONE);
    assertTrue(r.met());
    assertTrue(r.steps().isEmpty());
    assertEquals(1, r.evaluations());
    assertEquals(space.plan(space.uniform(4, 4)).entries(), r.plan().entries());
  }

  @Test
  void anUnreachableBudgetUsesEveryRungButNeverShipsTheFloatModel() throws Exception {
    BudgetSearch.Result r = BudgetSearch.search(space, space.uniform(4, 4), -1, 0, BudgetSearchTest::sqnr, MEASURE,
        Progress.NONE);
    assertFalse(r.met());
    int groups = space.activationGroups();
    assertEquals(groups - 1, r.floatGroups().size(), "all but one part float");
    assertFalse(r.plan().entries().isEmpty());
    // Every part's activations and the blocks' weights went to 8 bits, and all but one went float.
    long blocks = space.depth();
    assertEquals(groups + blocks + groups - 1, r.steps().size());
  }

  @Test
  void aByteBudgetStopsARaiseThatWouldNotFitAndTheOthersGoOn() throws Exception {
    MixedPrecision.Genes w4a4 = space.uniform(4, 4);
    long start = bytes(space.plan(w4a4));
    // Room for a few raises, not for all of them.
    long maxBytes = bytes(space.plan(space.uniform(4, 8))) + 2;
    assertTrue(maxBytes > start);
    List<Long> measured = new ArrayList<>();
    BudgetSearch.Result r = BudgetSearch.search(space, w4a4, -1, maxBytes, BudgetSearchTest::sqnr, (plan, max) -> {
      assertEquals(maxBytes, measured.isEmpty() ? maxBytes : max, "raises are measured against the byte budget");
      measured.add(bytes(plan));
      return MEASURE.measure(plan, max);
    }, Progress.NONE);
    assertFalse(r.met());
    assertTrue(r.rejected() > 0);
    assertEquals(measured.stream().filter(b -> b > maxBytes).count(), r.rejected());
    assertTrue(!r.steps().isEmpty());
    for (BudgetSearch.Step s : r.steps()) {
      assertTrue(s.bytes() <= maxBytes, s + " over " + maxBytes);
    }
    assertTrue(r.end().bytes() <= maxBytes);
    assertEquals(bytes(r.plan()), r.end().bytes());
    assertEquals(1 + r.steps().size() + r.rejected(), r.evaluations());
  }
}
