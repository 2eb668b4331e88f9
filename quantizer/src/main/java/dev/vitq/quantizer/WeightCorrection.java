package dev.vitq.quantizer;

import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.Progress;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Weight quantization that looks at the data: {@link Technique#GPTQ} rounds each linear layer's weights with GPTQ's
 * error compensation ({@link Gptq}) instead of to nearest, and {@link Technique#BIAS_CORRECTION} takes the expected
 * output error of the quantized weights, {@code E[x] (W_q - W)}, out of the layer's bias (Nagel et al. 2019). Both
 * need the layer inputs' moments on calibration images, gathered in one ONNX Runtime pass of the float model.
 *
 * <p>The result is the float model with new weights (already on the plan's grid, so lowering it re-derives exactly
 * GPTQ's levels) and biases, and the same plan: every later step (the search, the lowering, evaluation) sees it as
 * an ordinary float model.
 *
 * <p>Layers whose input a plan reparameterises ({@link Technique#LN_REPARAM}) are corrected on the weights the lowering
 * quantizes, {@code W' = D W} with the channel factors {@code D}, against the inputs those see, {@code x D^-1}; the
 * result is stored divided by {@code D} again, which the lowering's fold undoes.
 */
public final class WeightCorrection {
  /** Calibration images whose layer inputs make the Hessians: GPTQ used 128; more cost one forward pass each. */
  static final int IMAGES = 256;
  /**
   * What one group of layer inputs may hold of Hessians (double sums plus ONNX Runtime's float copy of a run): all of
   * ViT-Tiny's (100 MB) at once, one block of ViT-Base's (134 MB of 1.6 GB) at a time. ViT-Base at 224 pixels on 64
   * images peaked at 6.0 GiB when groups of 512 MB each ran the whole model on whole batches.
   */
  static final long MOMENT_BYTES = 256L << 20;
  /** Quantize the features of largest input energy first (GPTQ's act-order). */
  static final boolean ACT_ORDER = true;
  /**
   * The widest input whose layer GPTQ rounds when its weights have 8 bits; wider ones (ViT-Base's fc2, 3072) are
   * rounded to nearest, and bias-corrected where that is asked. GPTQ's cost grows as the cube of the input width (the
   * Hessian's factor) and its gain at 8 bits is small: on ViT-Base at W8A8 the fc2 layers were 3/4 of the Hessian
   * products and 9/10 of the factoring (BENCHMARKS.md, "ViT-Base cost"). 4-bit weights, where GPTQ earns most, keep
   * it at every width.
   */
  static final int GPTQ_MAX_INPUTS_8BIT = 2048;

  private WeightCorrection() {}

  /**
   * A linear layer whose weight the plan quantizes per output channel.
   *
   * @param weight its weight initializer
   * @param input its data input
   * @param outInRows whether the weight is stored [out, in] (Gemm with transB) rather than [in, out]
   * @param in input features
   * @param out output channels
   * @param bias its bias initializer, or null
   * @param biasFactor what an output change is in units of the bias ({@code alpha / beta} of a Gemm, else 1)
   * @param quantizer the plan's weight quantizer
   * @param factors the input's reparameterisation factors {@code D}, or null
   */
  record Layer(String weight, String input, boolean outInRows, int in, int out, String bias, float biasFactor,
      Quantizer quantizer, double[] factors) {}

  /**
   * The model with its weights corrected as the techniques ask, or the model itself when they ask for neither
   * {@link Technique#GPTQ} nor {@link Technique#BIAS_CORRECTION}.
   *
   * @param model the float model the plan was calibrated on
   * @param input the image input's name
   * @param plan the calibrated plan
   * @param data calibration images; a seeded sample of {@link #IMAGES} of them is used
   * @param settings the calibration's settings (techniques, batch size, seed, session)
   * @throws VitqException if an image cannot be used or ONNX Runtime fails
   */
  public static Model apply(Model model, String input, QuantPlan plan, ImageDataset data, Calibrator.Settings settings,
      Progress progress) throws VitqException {
    boolean gptq = settings.techniques().contains(Technique.GPTQ);
    boolean bias = settings.techniques().contains(Technique.BIAS_CORRECTION);
    boolean patch = settings.techniques().contains(Technique.PATCH_BIAS_CORRECTION);
    if (!gptq && !bias && !patch) {
      return model;
    }
    ImageDataset sample = data.sample(IMAGES, settings.seed());
    // The layer inputs' moments are those of the float convolution, which the corrected patch bias gives exactly only
    // behind the quantized image: the patch bias comes last.
    Model corrected = gptq || bias ? corrected(model, input, plan, sample, settings, gptq, bias, progress) : model;
    return patch ? PatchBias.correct(corrected, plan, sample, settings.batchSize()) : corrected;
  }

  private static Model corrected(Model model, String input, QuantPlan plan, ImageDataset sample,
      Calibrator.Settings settings, boolean gptq, boolean bias, Progress progress) throws VitqException {
    List<Layer> layers = layers(model.graph(), plan);
    Map<String, Integer> widths = new LinkedHashMap<>();
    Set<String> grams = new HashSet<>();
    for (Layer l : layers) {
      boolean rounds = gptq && gptqRounds(l);
      if (rounds || bias) {
        widths.put(l.input(), l.in());
      }
      if (rounds) {
        grams.add(l.input());
      }
    }
    Graph[] corrected = {model.graph()};
    Workspace work = new Workspace();
    InputMoments.collect(model, input, widths, grams, sample, settings.batchSize(), MOMENT_BYTES, settings.session(),
        progress, moments -> corrected[0] = correct(corrected[0], layers, moments, gptq, bias, work));
    return model.withGraph(corrected[0]);
  }

  /** Whether GPTQ, when asked, rounds this layer's weights (see {@link #GPTQ_MAX_INPUTS_8BIT}). */
  static boolean gptqRounds(Layer l) {
    return l.quantizer().bits() < 8 || l.in() <= GPTQ_MAX_INPUTS_8BIT;
  }

  /**
   * The linear layers (MatMul or Gemm reading a float input and a 2-D float weight only it reads) whose weights the
   * plan quantizes per output channel on a uniform grid. Convolutions, and weights read by several layers, keep
   * round-to-nearest.
   */
  static List<Layer> layers(Graph graph, QuantPlan plan) {
    GraphIndex idx = GraphIndex.of(graph);
    Map<String, PlanEntry> byTensor = plan.byTensor();
    List<Layer> layers = new ArrayList<>();
    for (PlanEntry e : plan.entries()) {
      Quantizer q = e.quantizer();
      if (e.role() != Role.WEIGHT || q.kind() != Quantizer.Kind.UNIFORM || !q.perChannel()) {
        continue;
      }
      List<Node> readers = idx.consumers(e.tensor());
      Optional<Tensor> w = idx.initializer(e.tensor());
      if (readers.size() != 1 || w.isEmpty() || w.get().rank() != 2 || w.get().dtype() != DType.FLOAT) {
        continue;
      }
      Node n = readers.get(0);
      boolean gemm = n.is("Gemm");
      if (!(gemm || n.is("MatMul")) || n.inputs().size() < 2 || !n.input(1).equals(e.tensor())
          || idx.isConstant(n.input(0)) || (gemm && n.intAttr("transA", 0) != 0)) {
        continue;
      }
      boolean outIn = gemm && n.intAttr("transB", 0) != 0;
      if (q.axis() != (outIn ? 0 : 1)) {
        continue;
      }
      int in = (int) (long) w.get().dims().get(outIn ? 1 : 0);
      int out = (int) (long) w.get().dims().get(outIn ? 0 : 1);
      String bias = null;
      float factor = 1;
      if (gemm) {
        float beta = n.floatAttr("beta", 1f);
        if (n.inputs().size() >= 3 && !n.input(2).isEmpty() && beta != 0) {
          bias = n.input(2);
          factor = n.floatAttr("alpha", 1f) / beta;
        }
      } else {
        List<Node> next = idx.consumers(n.output());
        if (next.size() == 1 && next.get(0).is("Add") && !idx.isGraphOutput(n.output())) {
          Node add = next.get(0);
          bias = add.input(0).equals(n.output()) ? add.input(1) : add.input(0);
        }
      }
      if (bias != null && (idx.consumers(bias).size() != 1 || idx.initializer(bias).filter(t -> t.dtype() == DType.FLOAT
          && t.elementCount() == out).isEmpty())) {
        bias = null;
      }
      PlanEntry x = byTensor.get(n.input(0));
      double[] factors = x != null && LayerNormReparam.applies(x) ? LayerNormReparam.factors(x.quantizer()) : null;
      if (factors != null && factors.length != in) {
        continue;
      }
      layers.add(new Layer(e.tensor(), n.input(0), outIn, in, out, bias, factor, q, factors));
    }
    return layers;
  }

  /**
   * The graph with the layers whose inputs have moments corrected: weights by GPTQ if asked, biases by the mean
   * output error of the (GPTQ or rounded-to-nearest) quantized weights if asked. Other layers are left as they are.
   */
  static Graph correct(Graph graph, List<Layer> layers, Map<String, InputMoments> moments, boolean gptq,
      boolean biasCorrection) {
    return correct(graph, layers, moments, gptq, biasCorrection, new Workspace());
  }

  /**
   * Square arrays one layer's correction works in, kept from layer to layer: ViT-Base's fc2 needs 75 MB each, and as
   * new arrays per layer they made ParallelGC grow its heap by gigabytes.
   */
  static final class Workspace {
    private double[] factor = new double[0];
    private double[] hessian = new double[0];

    double[] factor(int n) {
      if (factor.length < n * n) {
        factor = new double[n * n];
      }
      return factor;
    }

    double[] hessian(int n) {
      if (hessian.length < n * n) {
        hessian = new double[n * n];
      }
      return hessian;
    }
  }

  private static Graph correct(Graph graph, List<Layer> layers, Map<String, InputMoments> moments, boolean gptq,
      boolean biasCorrection, Workspace work) {
    GraphIndex idx = GraphIndex.of(graph);
    List<Layer> corrected = layers.stream().filter(l -> moments.containsKey(l.input())).toList();
    // One layer at a time, in layer order (GPTQ spreads each layer over the cores itself), so one workspace serves all.
    List<List<Tensor>> made = new ArrayList<>();
    for (Layer l : corrected) {
      made.add(correct(idx, l, moments.get(l.input()), gptq, biasCorrection, work));
    }
    Map<String, Tensor> replaced = new HashMap<>();
    made.forEach(ts -> ts.forEach(t -> replaced.put(t.name(), t)));
    if (replaced.isEmpty()) {
      return graph;
    }
    List<Tensor> initializers = new ArrayList<>(graph.initializers().size());
    for (Tensor t : graph.initializers()) {
      initializers.add(replaced.getOrDefault(t.name(), t));
    }
    return graph.withInitializers(initializers);
  }

  /** One layer's new weight (GPTQ) and bias (bias correction). */
  private static List<Tensor> correct(GraphIndex idx, Layer l, InputMoments m, boolean gptq, boolean biasCorrection,
      Workspace work) {
    if (m.features() != l.in()) {
      throw new IllegalArgumentException("Moments of '" + l.input() + "' have " + m.features() + " features, the "
          + "layer " + l.in());
    }
    List<Tensor> out = new ArrayList<>(2);
    Tensor wt = idx.initializer(l.weight()).orElseThrow();
    float[] w = wt.floats();
    boolean rounded = gptq && gptqRounds(l);
    float[] quantized = unfold(l, quantizedRows(l, fold(l, w), m.gram(), rounded, work));
    if (rounded) {
      out.add(Tensor.ofFloats(l.weight(), wt.dims(), quantized));
    }
    if (biasCorrection && l.bias() != null) {
      Tensor bt = idx.initializer(l.bias()).orElseThrow();
      float[] b = bt.floats();
      double[] mean = m.mean();
      for (int o = 0; o < l.out(); o++) {
        double shift = 0;
        for (int i = 0; i < l.in(); i++) {
          int at = l.outInRows() ? o * l.in() + i : i * l.out() + o;
          shift += mean[i] * ((double) quantized[at] - w[at]);
        }
        b[o] = (float) (b[o] - shift * l.biasFactor());
      }
      out.add(Tensor.ofFloats(l.bias(), bt.dims(), b));
    }
    return out;
  }

  /** The weights the lowering quantizes, as rows of output channels: times the factors, in float as the fold does. */
  private static float[] fold(Layer l, float[] w) {
    float[] rows = new float[l.out() * l.in()];
    for (int i = 0; i < l.in(); i++) {
      for (int o = 0; o < l.out(); o++) {
        float v = w[l.outInRows() ? o * l.in() + i : i * l.out() + o];
        rows[o * l.in() + i] = l.factors() == null ? v : (float) (v * l.factors()[i]);
      }
    }
    return rows;
  }

  /** Rows quantized by GPTQ against the inputs the folded weights see, or to nearest. */
  private static float[] quantizedRows(Layer l, float[] rows, double[] gram, boolean gptq, Workspace work) {
    Quantizer q = l.quantizer();
    if (!gptq) {
      float[] out = new float[rows.length];
      for (int k = 0; k < rows.length; k++) {
        out[k] = q.fakeQuant(rows[k], k / l.in());
      }
      return out;
    }
    double[] h = gram;
    double[] d = l.factors();
    if (d != null) {
      h = work.hessian(l.in());
      for (int i = 0; i < l.in(); i++) {
        for (int j = 0; j < l.in(); j++) {
          h[i * l.in() + j] = gram[i * l.in() + j] / (d[i] * d[j]);
        }
      }
    }
    return Gptq.quantize(rows, l.out(), l.in(), q, h, ACT_ORDER, work.factor(l.in()));
  }

  /** Rows back in the weight's layout, divided by the factors again. */
  private static float[] unfold(Layer l, float[] rows) {
    float[] w = new float[rows.length];
    for (int i = 0; i < l.in(); i++) {
      for (int o = 0; o < l.out(); o++) {
        float v = rows[o * l.in() + i];
        w[l.outInRows() ? o * l.in() + i : i * l.out() + o] = l.factors() == null ? v : (float) (v / l.factors()[i]);
      }
    }
    return w;
  }
}
