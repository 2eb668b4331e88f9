package dev.vitq.quantizer;

import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.TensorStats;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The space of mixed-precision plans of one ViT: each block's weights at 4 or 8 bits per linear layer, and each
 * activation group (the embedding, every block, the head) at 8, 6 or 4 bits.
 *
 * <p>An activation group at A8 takes its entries from a W8A8 calibration (layer-norm input factors only), at A6
 * from a W6A6 one and at A4 from a W4A4 one (ln-reparam, 8-bit norm inputs, log-sqrt(2) softmax, twin uniform GELU
 * outputs). Mixing is sound because every technique stays inside its group: ln-reparam folds a block's post-norm
 * channel factors into that block's own norm and the linear layers reading it, so a weight's quantizer is computed on
 * the weights as folded by its own group's activation plan. All plans come from one set of activation statistics
 * (they do not depend on bits).
 *
 * <p>W6 weights are not offered: they are stored in int8 like W8, so they cost the same bytes and round more. The
 * uniform W6A6 scheme is therefore represented by W8A6 (same size).
 *
 * {@snippet lang="java" :
 * MixedPrecision space = MixedPrecision.of(model, vit, sites, sha, stats, images, pre, Method.MSE, 0, session);
 * QuantPlan w4a4 = space.plan(space.uniform(4, 4));
 * }
 */
public final class MixedPrecision {
  /** Weight bits a block's linear layer may take. */
  public static final int[] WEIGHT_BITS = {4, 8};
  /** Activation bits a group may take, and the calibration scheme each comes from. */
  public static final int[] ACTIVATION_BITS = {4, 6, 8};

  private final List<PlanEntry> template;
  /** Activation entries by activation-bit index, then by tensor position in {@link #template}. */
  private final PlanEntry[][] activations;
  /** Weight quantizers by activation-bit index, weight-bit index, tensor position. */
  private final Quantizer[][][] weights;
  /** Positions in {@link #template} of the weights the search chooses bits for (the blocks' linear layers). */
  private final int[] searchedWeights;
  /** Element count of every weight tensor by template position (0 for activations). */
  private final long[] elements;
  private final int depth;
  private final QuantPlan base;

  private MixedPrecision(List<PlanEntry> template, PlanEntry[][] activations, Quantizer[][][] weights,
      int[] searchedWeights, long[] elements, int depth, QuantPlan base) {
    this.template = template;
    this.activations = activations;
    this.weights = weights;
    this.searchedWeights = searchedWeights;
    this.elements = elements;
    this.depth = depth;
    this.base = base;
  }

  /**
   * One point of the space.
   *
   * @param weightBits bits of each searched weight, in {@link #searchedWeights()} order
   * @param activationBits bits of each activation group: the embedding, blocks 1..depth, the head
   */
  public record Genes(int[] weightBits, int[] activationBits) {
    public Genes {
      weightBits = weightBits.clone();
      activationBits = activationBits.clone();
    }

    @Override
    public int[] weightBits() {
      return weightBits.clone();
    }

    @Override
    public int[] activationBits() {
      return activationBits.clone();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Genes g && Arrays.equals(g.weightBits, weightBits)
          && Arrays.equals(g.activationBits, activationBits);
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(weightBits) + Arrays.hashCode(activationBits);
    }

    /** A short name: the bits of each group, weights then activations, e.g. {@code w8888.4848/a8.8866.8}. */
    @Override
    public String toString() {
      StringBuilder s = new StringBuilder("w");
      for (int b : weightBits) {
        s.append(b);
      }
      s.append("/a");
      for (int b : activationBits) {
        s.append(b);
      }
      return s.toString();
    }
  }

  /**
   * The sites a mixed plan quantizes, to calibrate before {@link #of}: every group's, the same tensors in the same
   * order.
   */
  public static List<QuantSite> sites(VitStructure vit) {
    return QuantSites.of(vit, Scheme.W8A8, groupTechniques(Scheme.W8A8));
  }

  /**
   * A group's quantizers: its scheme's, with the layer-norm inputs quantized in every group (a W6A6 group measured
   * better with them, and groups must quantize the same tensors) and with their factors (with 4-bit weights they
   * measured better, and an A8 group may hold them: uniform W4A8 0.9828 with factors, 0.9814 without).
   */
  private static Set<Technique> groupTechniques(Scheme scheme) {
    Set<Technique> techniques = EnumSet.copyOf(Technique.defaults(scheme));
    techniques.remove(Technique.FLOAT_NORM_INPUT);
    techniques.add(Technique.NORM_INPUT_FACTORS);
    return techniques;
  }

  /**
   * The space of a ViT, from activation statistics gathered once ({@link Calibrator#calibrate}).
   *
   * @param sites {@link #sites}: every group's, the same tensors in the same order
   * @param images how many images the statistics came from
   * @throws VitqException if a technique cannot be applied where a scheme asks for it
   */
  public static MixedPrecision of(Model model, VitStructure vit, List<QuantSite> sites, String modelSha256,
      Map<String, TensorStats> stats, int images, Preprocessing pre, Method method, long seed,
      dev.vitq.calibration.InferenceSession.Config session) throws VitqException {
    Scheme[] bySchemes = {Scheme.W4A4, Scheme.W6A6, Scheme.W8A8};
    int n = sites.size();
    PlanEntry[][] activations = new PlanEntry[bySchemes.length][n];
    Quantizer[][][] weights = new Quantizer[bySchemes.length][WEIGHT_BITS.length][n];
    long[] elements = new long[n];
    QuantPlan base = null;
    for (int a = 0; a < bySchemes.length; a++) {
      Scheme scheme = bySchemes[a];
      Set<Technique> techniques = groupTechniques(scheme);
      List<QuantSite> schemeSites = QuantSites.of(vit, scheme, techniques);
      Calibrator.Settings settings = new Calibrator.Settings(scheme, method, 1, seed, session, techniques);
      QuantPlan plan = Calibrator.fromStats(model, schemeSites, modelSha256, stats, images, pre, settings);
      if (scheme == Scheme.W8A8) {
        base = plan;
      }
      // The weights as this group's activation plan folds them: ln-reparam rescales the layers after each norm.
      GraphIndex folded = GraphIndex.of(LayerNormReparam.apply(model.graph(), plan.entries()));
      for (int i = 0; i < n; i++) {
        QuantSite s = schemeSites.get(i);
        if (!s.tensor().equals(sites.get(i).tensor())) {
          throw new IllegalStateException("Schemes quantize the same tensors in the same order");
        }
        if (s.role().isActivation()) {
          activations[a][i] = plan.entries().get(i);
          continue;
        }
        Tensor w = folded.initializer(s.tensor()).orElseThrow();
        long[] dims = w.dims().stream().mapToLong(Long::longValue).toArray();
        elements[i] = w.elementCount();
        for (int b = 0; b < WEIGHT_BITS.length; b++) {
          // Weights outside the blocks (patch embedding, head) keep 8 bits in every scheme.
          int bits = searched(s, vit) ? WEIGHT_BITS[b] : 8;
          weights[a][b][i] = ScaleInit.weight(w.floats(), dims, s.axis(), bits, method);
        }
      }
    }
    List<Integer> searched = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      if (!sites.get(i).role().isActivation() && searched(sites.get(i), vit)) {
        searched.add(i);
      }
    }
    return new MixedPrecision(Objects.requireNonNull(base).entries(), activations, weights,
        searched.stream().mapToInt(Integer::intValue).toArray(), elements, vit.blocks().size(), base);
  }

  private static boolean searched(QuantSite s, VitStructure vit) {
    return s.role() == Role.WEIGHT && s.block() >= 0 && s.block() < vit.blocks().size();
  }

  /** How many weights the search chooses bits for. */
  public int searchedWeights() {
    return searchedWeights.length;
  }

  /**
   * The point with 8-bit activations everywhere and the searched weights of blocks {@code from} (inclusive) to
   * {@code to} (exclusive) at 8 bits, the others at 4: a size between W4A8 and W8A8.
   */
  public Genes w8Blocks(int from, int to) {
    int[] wb = new int[searchedWeights.length];
    for (int k = 0; k < wb.length; k++) {
      int block = template.get(searchedWeights[k]).block();
      wb[k] = block >= from && block < to ? 8 : 4;
    }
    int[] ab = new int[activationGroups()];
    Arrays.fill(ab, 8);
    return new Genes(wb, ab);
  }

  /** The number of transformer blocks. */
  public int depth() {
    return depth;
  }

  /** How many activation groups there are: the embedding, each block and the head. */
  public int activationGroups() {
    return depth + 2;
  }

  /** The point with every searched weight at {@code w} bits and every group's activations at {@code a} bits. */
  public Genes uniform(int w, int a) {
    int[] wb = new int[searchedWeights.length];
    int[] ab = new int[activationGroups()];
    index(WEIGHT_BITS, w);
    index(ACTIVATION_BITS, a);
    Arrays.fill(wb, w);
    Arrays.fill(ab, a);
    return new Genes(wb, ab);
  }

  private static int index(int[] options, int bits) {
    for (int i = 0; i < options.length; i++) {
      if (options[i] == bits) {
        return i;
      }
    }
    throw new IllegalArgumentException("Bits " + bits + " not among " + Arrays.toString(options));
  }

  /** The activation group of an entry's block: 0 for the embedding, depth + 1 for the head. */
  private int group(int block) {
    return Math.max(0, Math.min(depth + 1, block + 1));
  }

  /**
   * The plan of a point: scheme {@link Scheme#AUTO}, search "auto".
   *
   * @throws IllegalArgumentException if the point has other lengths or bits than this space offers
   */
  public QuantPlan plan(Genes g) {
    int[] wb = g.weightBits();
    int[] ab = g.activationBits();
    if (wb.length != searchedWeights.length || ab.length != activationGroups()) {
      throw new IllegalArgumentException("A point of this space has " + searchedWeights.length + " weights and "
          + activationGroups() + " activation groups, got " + wb.length + " and " + ab.length);
    }
    int[] weightChoice = new int[template.size()];
    Arrays.fill(weightChoice, index(WEIGHT_BITS, 8));
    for (int k = 0; k < searchedWeights.length; k++) {
      weightChoice[searchedWeights[k]] = index(WEIGHT_BITS, wb[k]);
    }
    List<PlanEntry> entries = new ArrayList<>(template.size());
    for (int i = 0; i < template.size(); i++) {
      PlanEntry t = template.get(i);
      int a = index(ACTIVATION_BITS, ab[group(t.block())]);
      entries.add(t.role().isActivation() ? activations[a][i] : t.with(weights[a][weightChoice[i]][i]));
    }
    return new QuantPlan(QuantPlan.FORMAT, base.modelSha256(), Scheme.AUTO, base.method(), "auto", base.seed(),
        base.calibrationImages(), Technique.defaults(Scheme.AUTO), entries);
  }

  /**
   * The plan of a point with the activation groups {@code floatGroups} left in float: their entries, weights and
   * activations, are dropped, so the lowering leaves those tensors as they are. An accuracy budget raises a part this
   * far when 8 bits lose too much ({@link dev.vitq.quantizer.search.BudgetSearch}).
   */
  public QuantPlan plan(Genes g, Set<Integer> floatGroups) {
    QuantPlan all = plan(g);
    if (floatGroups.isEmpty()) {
      return all;
    }
    return new QuantPlan(all.format(), all.modelSha256(), all.scheme(), all.method(), all.search(), all.seed(),
        all.calibrationImages(), all.weightCorrections(),
        all.entries().stream().filter(e -> !floatGroups.contains(group(e.block()))).toList());
  }

  /** The entries of one activation group of a point alone: what a sensitivity measure quantizes of it. */
  public QuantPlan part(Genes g, int group) {
    QuantPlan all = plan(g);
    return new QuantPlan(all.format(), all.modelSha256(), all.scheme(), all.method(), all.search(), all.seed(),
        all.calibrationImages(), all.weightCorrections(),
        all.entries().stream().filter(e -> group(e.block()) == group).toList());
  }

  /** The activation group a block's entries belong to: 0 for the embedding, 1..depth the blocks, depth + 1 the head. */
  public int groupOf(int block) {
    return group(block);
  }

  /** The fewest bits of the searched weights in activation group {@code group} (8 when it has none). */
  public int weightBits(Genes g, int group) {
    int[] wb = g.weightBits();
    int bits = 8;
    for (int k = 0; k < searchedWeights.length; k++) {
      if (group(template.get(searchedWeights[k]).block()) == group) {
        bits = Math.min(bits, wb[k]);
      }
    }
    return bits;
  }

  /** The point with the searched weights of activation group {@code group} at {@code bits}. */
  public Genes withWeightBits(Genes g, int group, int bits) {
    index(WEIGHT_BITS, bits);
    int[] wb = g.weightBits();
    for (int k = 0; k < searchedWeights.length; k++) {
      if (group(template.get(searchedWeights[k]).block()) == group) {
        wb[k] = bits;
      }
    }
    return new Genes(wb, g.activationBits());
  }

  /** The point with activation group {@code group} at {@code bits}. */
  public Genes withActivationBits(Genes g, int group, int bits) {
    index(ACTIVATION_BITS, bits);
    int[] ab = g.activationBits();
    ab[group] = bits;
    return new Genes(g.weightBits(), ab);
  }

  /**
   * The bytes of a point's quantized weights: int4 two to a byte, int8 one, and their per-channel scales (float16
   * when they fit, as {@link QdqLowering} stores them, else float32). The rest of a deployed model (float norms and
   * biases, activation scales, graph) differs little between points; {@link Sizes} adds it.
   */
  public long weightBytes(Genes g) {
    QuantPlan plan = plan(g);
    long total = 0;
    for (int i = 0; i < template.size(); i++) {
      PlanEntry e = plan.entries().get(i);
      if (e.role() != Role.WEIGHT) {
        continue;
      }
      Quantizer q = e.quantizer();
      total += q.bits() == 4 ? (elements[i] + 1) / 2 : elements[i];
      total += (long) q.scales().length * (halfScales(q) ? 2 : 4);
    }
    return total;
  }

  private static boolean halfScales(Quantizer q) {
    for (float s : q.scales()) {
      if (Float.float16ToFloat(Float.floatToFloat16(s)) != s || Math.abs(s) < QdqLowering.MIN_NORMAL_HALF) {
        return false;
      }
    }
    return true;
  }

  /** How many searched weights are at 4 bits, and how many activation groups at each activation width. */
  int[] counts(Genes g) {
    int[] c = new int[1 + ACTIVATION_BITS.length];
    for (int b : g.weightBits()) {
      c[0] += b == 4 ? 1 : 0;
    }
    for (int b : g.activationBits()) {
      c[1 + index(ACTIVATION_BITS, b)]++;
    }
    return c;
  }

  /**
   * The deployed size of any point, from the exact sizes of four uniform points: their weights' bytes are computed,
   * and what is left (the float rest of the model; per int4 weight, its Cast; per group at 6 or 4 bits, its extra
   * clipping and log-softmax nodes) is solved for from the four measured sizes. Exact on the four, and within a few
   * hundred bytes elsewhere (groups differ a little in how many activations they quantize).
   *
   * @param fixed bytes that do not depend on the point
   * @param perInt4Weight extra bytes of a 4-bit weight beyond its packed levels
   * @param perGroupA6 extra bytes of a 6-bit activation group over an 8-bit one
   * @param perGroupA4 extra bytes of a 4-bit activation group over an 8-bit one
   */
  public record Sizes(double fixed, double perInt4Weight, double perGroupA6, double perGroupA4) {
    /** The estimated deployed bytes of a point. */
    public long bytes(MixedPrecision space, Genes g) {
      int[] c = space.counts(g);
      return Math.round(fixed + space.weightBytes(g) + c[0] * perInt4Weight + c[2] * perGroupA6
          + c[1] * perGroupA4);
    }

    /**
     * Solves the constants from the measured deployed sizes of the uniform points W8A8, W4A8, W8A6 and W4A4.
     */
    public static Sizes fit(MixedPrecision space, long w8a8, long w4a8, long w8a6, long w4a4) {
      Genes g88 = space.uniform(8, 8);
      Genes g48 = space.uniform(4, 8);
      double fixed = w8a8 - space.weightBytes(g88);
      int weights = Math.max(1, space.searchedWeights());
      int groups = space.activationGroups();
      double int4 = (w4a8 - fixed - space.weightBytes(g48)) / weights;
      double a6 = (w8a6 - fixed - space.weightBytes(space.uniform(8, 6))) / groups;
      double a4 = (w4a4 - fixed - space.weightBytes(space.uniform(4, 4)) - weights * int4) / groups;
      return new Sizes(fixed, space.searchedWeights() == 0 ? 0 : int4, a6, a4);
    }
  }
}
