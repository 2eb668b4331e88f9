package dev.vitq.quantizer;

import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Post-LayerNorm activations quantized per channel at per-tensor cost (RepQ-ViT's scale reparameterisation).
 *
 * <p>The output of a LayerNorm has channels of very different ranges, so one scale for all of them either clips the
 * wide ones or rounds the narrow ones away; at 4 bits that collapses the model. A per-channel quantizer
 * {@code (s_c, z_c)} on the norm's output {@code x} equals a per-tensor one {@code (s, z)} (the means) on
 * {@code x'_c = x_c / r_c + b_c} with {@code r_c = s_c / s} and {@code b_c = s (z_c - z)}: both give the same level
 * in every channel. {@code x'} is what the norm computes with its affine divided by {@code r} and shifted by
 * {@code b}, and the linear layers reading it get back {@code x = r (x' - b)} through their weights (input channel
 * {@code c} times {@code r_c}) and biases (minus {@code W' b}). The shipped graph has per-tensor Q/DQ only.
 *
 * <p>A plan asks for it with a per-channel uniform quantizer on a {@link Role#LINEAR_INPUT}; {@link #find} says
 * whether a tensor allows it (an affine with its own scale and bias feeding only biased linear layers).
 */
public final class LayerNormReparam {
  private LayerNormReparam() {}

  /**
   * A reparameterisable post-norm activation.
   *
   * @param tensor the quantized activation
   * @param gamma the norm's scale initializer
   * @param beta the norm's bias initializer
   * @param linears the layers reading the activation
   */
  record Site(String tensor, String gamma, String beta, List<Consumer> linears) {}

  /**
   * A linear layer reading a post-norm activation.
   *
   * @param weight its weight initializer
   * @param outInRows whether the weight is stored [out, in] (Gemm with transB) rather than [in, out]
   * @param bias its bias initializer
   */
  record Consumer(String weight, boolean outInRows, String bias) {}

  /** Whether a plan entry asks for the reparameterisation. */
  public static boolean applies(PlanEntry e) {
    Quantizer q = e.quantizer();
    return e.role() == Role.LINEAR_INPUT && q.kind() == Quantizer.Kind.UNIFORM && q.perChannel() && !q.signed();
  }

  /** The per-tensor scale the shipped graph uses for a reparameterised entry: the mean channel scale. */
  public static float tensorScale(Quantizer q) {
    double sum = 0;
    for (float s : q.scales()) {
      sum += s;
    }
    return (float) (sum / q.scales().length);
  }

  /** The per-tensor zero point: the rounded mean channel zero point. */
  static int tensorZero(Quantizer q) {
    double sum = 0;
    for (int z : q.zeroPoints()) {
      sum += z;
    }
    return (int) Math.round(sum / q.zeroPoints().length);
  }

  /** The channel factors {@code r_c = s_c / s} the linear layers' input channels are multiplied by. */
  static double[] factors(Quantizer q) {
    double s = tensorScale(q);
    double[] r = new double[q.scales().length];
    for (int c = 0; c < r.length; c++) {
      r[c] = q.scale(c) / s;
    }
    return r;
  }

  /** The affine and linear layers around {@code tensor}, if it can be reparameterised. */
  static Optional<Site> find(GraphIndex idx, String tensor) {
    if (idx.isGraphOutput(tensor)) {
      return Optional.empty();
    }
    String affineOut = tensor;
    Optional<Node> producer = idx.producer(tensor);
    // A Reshape flattening [batch, tokens, channels] to two dimensions keeps the channel axis last.
    if (producer.isPresent() && producer.get().is("Reshape")) {
      affineOut = producer.get().input(0);
      if (idx.consumers(affineOut).size() != 1 || idx.isGraphOutput(affineOut)) {
        return Optional.empty();
      }
      producer = idx.producer(affineOut);
    }
    Optional<String[]> affine = producer.flatMap(n -> affine(idx, n));
    if (affine.isEmpty()) {
      return Optional.empty();
    }
    int channels = length(idx, affine.get()[0]);
    if (channels <= 0 || length(idx, affine.get()[1]) != channels) {
      return Optional.empty();
    }
    List<Consumer> linears = new ArrayList<>();
    for (Node n : idx.consumers(tensor)) {
      Optional<Consumer> c = linear(idx, n, tensor, channels);
      if (c.isEmpty()) {
        return Optional.empty();
      }
      linears.add(c.get());
    }
    return linears.isEmpty() ? Optional.empty()
        : Optional.of(new Site(tensor, affine.get()[0], affine.get()[1], List.copyOf(linears)));
  }

  /** {gamma, beta} of a LayerNormalization or a Mul-Add affine whose constants only it reads. */
  private static Optional<String[]> affine(GraphIndex idx, Node n) {
    String gamma;
    String beta;
    if (n.is("LayerNormalization") && n.inputs().size() >= 3) {
      gamma = n.input(1);
      beta = n.input(2);
    } else if (n.is("Add")) {
      int b = idx.initializer(n.input(1)).isPresent() ? 1 : 0;
      beta = n.input(b);
      Optional<Node> mul = idx.producer(n.input(1 - b), "Mul");
      if (mul.isEmpty() || idx.consumers(n.input(1 - b)).size() != 1) {
        return Optional.empty();
      }
      int g = idx.initializer(mul.get().input(1)).isPresent() ? 1 : 0;
      gamma = mul.get().input(g);
    } else {
      return Optional.empty();
    }
    if (gamma.equals(beta) || idx.initializer(gamma).isEmpty() || idx.initializer(beta).isEmpty()
        || idx.consumers(gamma).size() != 1 || idx.consumers(beta).size() != 1) {
      return Optional.empty();
    }
    return Optional.of(new String[] {gamma, beta});
  }

  /** A biased linear layer reading {@code x} as its data input, with constants only it reads. */
  private static Optional<Consumer> linear(GraphIndex idx, Node n, String x, int channels) {
    String weight;
    String bias;
    boolean outIn;
    if (n.is("Gemm")) {
      if (n.inputs().size() < 3 || !n.input(0).equals(x) || n.intAttr("transA", 0) != 0
          || n.floatAttr("alpha", 1f) != 1f || n.floatAttr("beta", 1f) != 1f) {
        return Optional.empty();
      }
      weight = n.input(1);
      bias = n.input(2);
      outIn = n.intAttr("transB", 0) != 0;
    } else if (n.is("MatMul") && n.input(0).equals(x)) {
      weight = n.input(1);
      outIn = false;
      List<Node> next = idx.consumers(n.output());
      if (next.size() != 1 || !next.get(0).is("Add") || idx.isGraphOutput(n.output())) {
        return Optional.empty();
      }
      Node add = next.get(0);
      bias = add.input(0).equals(n.output()) ? add.input(1) : add.input(0);
    } else {
      return Optional.empty();
    }
    Optional<Tensor> w = idx.initializer(weight);
    if (w.isEmpty() || w.get().rank() != 2 || w.get().dims().get(outIn ? 1 : 0) != channels
        || idx.consumers(weight).size() != 1 || idx.initializer(bias).isEmpty() || idx.consumers(bias).size() != 1
        || length(idx, bias) != w.get().dims().get(outIn ? 0 : 1)) {
      return Optional.empty();
    }
    return Optional.of(new Consumer(weight, outIn, bias));
  }

  /** The element count of a 1-D (or scalar-free) float initializer, or -1. */
  private static int length(GraphIndex idx, String name) {
    return idx.initializer(name).filter(t -> t.rank() == 1 && t.dtype() == DType.FLOAT)
        .map(t -> (int) (long) t.dims().get(0)).orElse(-1);
  }

  /**
   * The graph with every reparameterised entry of {@code entries} folded into its norm and linear layers: norm
   * scale and bias divided by {@code r} (bias also shifted by {@code b}), linear weights' input channels times
   * {@code r}, linear biases minus {@code W' b}. Other entries change nothing.
   *
   * @throws VitqException if an entry asks for it on a tensor that does not allow it
   */
  static Graph apply(Graph graph, List<PlanEntry> entries) throws VitqException {
    GraphIndex idx = GraphIndex.of(graph);
    Map<String, Tensor> replaced = new HashMap<>();
    for (PlanEntry e : entries) {
      if (!applies(e)) {
        continue;
      }
      Site site = find(idx, e.tensor()).orElseThrow(() -> new VitqException("The plan quantizes '" + e.tensor()
          + "' per channel, which needs a layer norm feeding only biased linear layers there."));
      Quantizer q = e.quantizer();
      int channels = q.scales().length;
      float[] gamma = idx.initializer(site.gamma()).orElseThrow().floats();
      float[] beta = idx.initializer(site.beta()).orElseThrow().floats();
      if (gamma.length != channels) {
        throw new VitqException("The plan quantizes '" + e.tensor() + "' in " + channels + " channels; its norm has "
            + gamma.length + ".");
      }
      double s = tensorScale(q);
      int z = tensorZero(q);
      double[] r = factors(q);
      double[] b = new double[channels];
      float[] newGamma = new float[channels];
      float[] newBeta = new float[channels];
      for (int c = 0; c < channels; c++) {
        b[c] = s * (q.zeroPoints()[c] - z);
        newGamma[c] = (float) (gamma[c] / r[c]);
        newBeta[c] = (float) (beta[c] / r[c] + b[c]);
      }
      put(replaced, idx, site.gamma(), newGamma);
      put(replaced, idx, site.beta(), newBeta);
      for (Consumer l : site.linears()) {
        Tensor wt = idx.initializer(l.weight()).orElseThrow();
        float[] w = wt.floats();
        float[] bias = idx.initializer(l.bias()).orElseThrow().floats();
        int out = bias.length;
        float[] newW = new float[w.length];
        double[] shift = new double[out];
        for (int i = 0; i < channels; i++) {
          for (int o = 0; o < out; o++) {
            int at = l.outInRows() ? o * channels + i : i * out + o;
            float scaled = (float) (w[at] * r[i]);
            newW[at] = scaled;
            shift[o] += (double) scaled * b[i];
          }
        }
        float[] newBias = new float[out];
        for (int o = 0; o < out; o++) {
          newBias[o] = (float) (bias[o] - shift[o]);
        }
        put(replaced, idx, l.weight(), newW);
        put(replaced, idx, l.bias(), newBias);
      }
    }
    if (replaced.isEmpty()) {
      return graph;
    }
    List<Tensor> initializers = new ArrayList<>(graph.initializers().size());
    for (Tensor t : graph.initializers()) {
      initializers.add(replaced.getOrDefault(t.name(), t));
    }
    return graph.withInitializers(initializers);
  }

  private static void put(Map<String, Tensor> replaced, GraphIndex idx, String name, float[] values) {
    Tensor t = idx.initializer(name).orElseThrow();
    replaced.put(name, Tensor.ofFloats(name, t.dims(), values));
  }
}
