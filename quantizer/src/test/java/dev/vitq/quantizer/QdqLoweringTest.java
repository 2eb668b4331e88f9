package dev.vitq.quantizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The deployable and the simulated lowering of one plan compute the same network. */
class QdqLoweringTest {
  // Every scheme with a plan: w8-dynamic and fp16 are written without one.
  @ParameterizedTest
  @EnumSource(value = Scheme.class, mode = EnumSource.Mode.EXCLUDE, names = {"W8_DYNAMIC", "FP16"})
  void deployAndSimulateAgree(Scheme scheme) throws Exception {
    deployAndSimulateAgree(scheme, false);
  }

  /** With post-norm inputs per channel (folded into the norms) and softmax on a log-sqrt(2) grid. */
  @ParameterizedTest
  @EnumSource(value = Scheme.class, mode = EnumSource.Mode.EXCLUDE, names = {"W8_DYNAMIC", "FP16"})
  void deployAndSimulateAgreeWithTechniques(Scheme scheme) throws Exception {
    deployAndSimulateAgree(scheme, true);
  }

  private void deployAndSimulateAgree(Scheme scheme, boolean techniques) throws Exception {
    Model model = VitBuilder.build(new VitConfig(32, 8, 3, 32, 2, 2, 64, 5), Spelling.TIMM_17, 11);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    GraphIndex idx = GraphIndex.of(model.graph());
    List<PlanEntry> entries = new ArrayList<>();
    for (QuantSite s : QuantSites.of(vit, scheme)) {
      Quantizer q;
      if (techniques && s.role() == Role.LINEAR_INPUT && LayerNormReparam.find(idx, s.tensor()).isPresent()) {
        q = LayerNormReparamTest.spread(32, s.bits(), entries.size());
      } else if (techniques && s.role() == Role.SOFTMAX_OUTPUT && s.bits() < 8) {
        // A calibrated top level below 1, as attention over many tokens gets.
        q = Quantizer.logSqrt2(s.bits()).withScales(new float[] {0.125f});
      } else if (techniques && s.role() == Role.GELU_OUTPUT && s.bits() < 8) {
        q = Quantizer.twin(s.bits(), 3, 0.02f, 2);
      } else if (s.role() == Role.WEIGHT) {
        Tensor w = idx.initializer(s.tensor()).orElseThrow();
        q = ScaleInit.weight(w.floats(), w.dims().stream().mapToLong(Long::longValue).toArray(), s.axis(), s.bits(),
            Method.MSE);
      } else if (s.role() == Role.SOFTMAX_OUTPUT && s.bits() < 8) {
        q = Quantizer.log2(s.bits());
      } else if (s.role() == Role.NORM_INPUT) {
        float[] lo = new float[32];
        float[] hi = new float[32];
        java.util.Arrays.fill(lo, -3);
        java.util.Arrays.fill(hi, 3);
        hi[7] = 40; // one wide channel gets a power-of-two factor
        q = ScaleInit.powerOfTwoChannels(Quantizer.asymmetric(s.bits(), -3, 3), lo, hi, 2, 6);
      } else {
        q = Quantizer.asymmetric(s.bits(), -4, 4);
      }
      entries.add(new PlanEntry(s.tensor(), s.role(), s.block(), q));
    }
    QuantPlan plan = new QuantPlan(QuantPlan.FORMAT, "test", scheme, Method.MSE, "none", 0, 0, Set.of(), entries);
    Model deploy = QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY);
    Model simulate = QdqLowering.lower(model, plan, QdqLowering.Mode.SIMULATE);
    assertTrue(deploy.graph().inputs().size() == 1, "deployed scales are constants");
    if (techniques) {
      java.util.Set<String> folded = new java.util.HashSet<>();
      plan.entries().stream().filter(LayerNormReparam::applies).forEach(e -> folded.add(e.tensor()));
      assertEquals(2 * vit.blocks().size(), folded.size(), "post-norm inputs per channel");
      List<Node> quantizers = deploy.graph().nodes().stream()
          .filter(n -> n.is("QuantizeLinear") && folded.contains(n.input(0))).toList();
      assertEquals(folded.size(), quantizers.size());
      assertTrue(quantizers.stream().allMatch(n -> n.attribute("axis").isEmpty()
          && n.input(1).endsWith("_scale")), "per-channel post-norm inputs ship as per-tensor Q/DQ");
    }

    float[] pixels = new float[4 * 3 * 32 * 32];
    Random rng = new Random(2);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    HostTensor x = HostTensor.ofFloats(new long[] {4, 3, 32, 32}, pixels);
    Map<String, HostTensor> feed = new HashMap<>();
    feed.put(VitBuilder.INPUT, x);
    for (PlanEntry e : plan.entries()) {
      float[] s = QdqLowering.scaleInput(e);
      if (e.quantizer().kind() == Quantizer.Kind.UNIFORM || e.quantizer().kind() == Quantizer.Kind.TWIN) {
        long[] shape = e.role() == Role.WEIGHT || s.length > 1 ? new long[] {s.length} : new long[0];
        feed.put(QdqLowering.SCALE_INPUT_PREFIX + e.tensor(), HostTensor.ofFloats(shape, s));
      }
    }
    float[] a;
    float[] b;
    try (InferenceSession s = InferenceSession.of(deploy, InferenceSession.Config.defaults())) {
      a = s.run(Map.of(VitBuilder.INPUT, x), List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
    try (InferenceSession s = InferenceSession.of(simulate, InferenceSession.Config.defaults())) {
      b = s.run(feed, List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
    assertClose(a, b);

    // Mixed: only the last block's quantizers simulated, as the search lowers a block visit.
    java.util.Set<String> lastBlock = new java.util.HashSet<>();
    plan.entries().stream().filter(e -> e.block() == vit.blocks().size() - 1).forEach(e -> lastBlock.add(e.tensor()));
    Model mixed = QdqLowering.lower(model, plan, lastBlock);
    Map<String, HostTensor> mixedFeed = new HashMap<>();
    for (dev.vitq.models.Value v : mixed.graph().inputs()) {
      assertTrue(v.name().equals(VitBuilder.INPUT) || lastBlock.contains(
          v.name().substring(QdqLowering.SCALE_INPUT_PREFIX.length())), "only the last block's scales are inputs");
      mixedFeed.put(v.name(), feed.get(v.name()));
    }
    assertTrue(mixed.graph().inputs().size() > 1, "the last block's scales are inputs");
    assertTrue(mixed.graph().initializers().stream().anyMatch(t -> t.name().endsWith("_int8")
        || t.name().endsWith("_int4")), "the other blocks' weights are stored as integers");
    float[] c;
    try (InferenceSession s = InferenceSession.of(mixed, InferenceSession.Config.defaults())) {
      c = s.run(mixedFeed, List.of(VitBuilder.OUTPUT)).get(VitBuilder.OUTPUT).floats();
    }
    assertClose(a, c);
  }

  /** A twin uniform quantizer in ONNX Runtime rounds every value as {@link Quantizer#fakeQuant} does. */
  @ParameterizedTest
  @ValueSource(ints = {4, 6})
  void twinUniformLowersToItsOwnLevels(int bits) throws Exception {
    Quantizer q = Quantizer.twin(bits, 3, 0.0625f, 2);
    float[] x = new float[2001];
    for (int i = 0; i < x.length; i++) {
      // From below the lowest level to past the highest, off the midpoints between levels (ties round differently).
      x[i] = (float) (-0.3 + i * (0.3 + 0.25 * (q.qmax() - 3) + 1) / (x.length - 1)) + 1e-4f;
    }
    float[] y = lowered(q, Role.GELU_OUTPUT, x);
    for (int i = 0; i < x.length; i++) {
      assertEquals(q.fakeQuant(x[i], 0), y[i], 1e-6, "x=" + x[i]);
    }
  }

  /** A logarithmic quantizer, with its top level at 1 or calibrated lower, in ONNX Runtime as in Java. */
  @ParameterizedTest
  @ValueSource(floats = {1f, 0.0110485435f})
  void logGridsLowerToTheirOwnLevels(float top) throws Exception {
    for (Quantizer q : List.of(Quantizer.log2(4).withScales(new float[] {top}),
        Quantizer.logSqrt2(4).withScales(new float[] {top}))) {
      float[] x = new float[2001];
      for (int i = 0; i < x.length; i++) {
        // Log-spaced from far below the smallest level to the top, off the rounding boundaries.
        x[i] = (float) (top * Math.pow(2, -12.0 * i / (x.length - 1))) * 0.9999f;
      }
      float[] y = lowered(q, Role.SOFTMAX_OUTPUT, x);
      for (int i = 0; i < x.length; i++) {
        float want = q.fakeQuant(x[i], 0);
        assertEquals(want, y[i], 1e-5 * want + 1e-12, q + " x=" + x[i]);
      }
      assertEquals(top, q.fakeQuant(top, 0), 1e-6 * top, "the top value is a level");
    }
  }

  /** {@code x} through an Identity whose input {@code q} quantizes as a {@code role}, lowered and run in ONNX Runtime. */
  private static float[] lowered(Quantizer q, Role role, float[] x) throws Exception {
    Value in = Value.of("x", new TensorType(DType.FLOAT, List.of(Dim.of(x.length))));
    Graph g = new Graph("g", List.of(Node.of("id", "Identity", List.of("x"), List.of("y"))), List.of(in),
        List.of(Value.of("y", null)), List.of(), List.of(), Blob.EMPTY);
    Model model = new Model(8, List.of(new OpsetId("", 17)), "test", "", "", 0, "", List.of(), g, Blob.EMPTY);
    QuantPlan plan = new QuantPlan(QuantPlan.FORMAT, "test", Scheme.W4A4, Method.MSE, "none", 0, 0, Set.of(),
        List.of(new PlanEntry("x", role, 0, q)));
    try (InferenceSession s = InferenceSession.of(QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY),
        InferenceSession.Config.defaults())) {
      return s.run(Map.of("x", HostTensor.ofFloats(new long[] {x.length}, x)), List.of("y")).get("y").floats();
    }
  }

  private static void assertClose(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double maxDiff = 0;
    double maxAbs = 0;
    for (int i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      maxAbs = Math.max(maxAbs, Math.abs(a[i]));
    }
    // Integer kernels and float fake-quant may round a few values to neighbouring levels, nothing more.
    assertTrue(maxDiff <= 0.05 * maxAbs + 1e-3, "max difference " + maxDiff + " of " + maxAbs);
  }
}
