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
import java.util.List;
import java.util.Optional;

/**
 * {@link Technique#PATCH_BIAS_CORRECTION}: the patch embedding's bias less the convolution of its quantized image's
 * mean rounding error per colour channel, {@code b_o - sum_{c,k} W_q[o, c, k] e_c} with {@code e_c = E[Q(x_c) - x_c]}
 * over calibration images. On the pixel grid the rounding error of an 8-bit image is the same for every pixel of a
 * channel (the zero point's rounding), so the quantized image then convolves to exactly the float image's output;
 * on a per-tensor grid it takes out the error's mean. The weights {@code W_q} are the plan's rounded ones, which the
 * lowering ships.
 *
 * <p>The corrected model is meant for the plan's lowering only: in float, every patch token is shifted by what the
 * quantized image adds back.
 */
final class PatchBias {
  private PatchBias() {}

  /**
   * The model with the patch embedding's bias corrected, or the model itself when the plan does not quantize a
   * convolution's image input, or that convolution pads, groups, or has no bias of its own.
   *
   * @param sample calibration images, read in order (the sums do not depend on {@code batchSize})
   * @throws VitqException if an image cannot be read
   */
  static Model correct(Model model, QuantPlan plan, ImageDataset sample, int batchSize) throws VitqException {
    Optional<PlanEntry> image = plan.entries().stream().filter(e -> e.role() == Role.CONV_INPUT).findFirst();
    if (image.isEmpty() || image.get().quantizer().kind() != Quantizer.Kind.UNIFORM) {
      return model;
    }
    Graph graph = model.graph();
    GraphIndex idx = GraphIndex.of(graph);
    List<Node> convs = idx.consumers(image.get().tensor()).stream().filter(n -> n.is("Conv")).toList();
    if (convs.size() != 1) {
      return model;
    }
    Node conv = convs.get(0);
    Optional<Tensor> weight = idx.initializer(conv.input(1));
    Optional<Tensor> bias = conv.inputs().size() > 2 && !conv.input(2).isEmpty() && idx.consumers(conv.input(2))
        .size() == 1 ? idx.initializer(conv.input(2)) : Optional.empty();
    boolean plain = conv.intAttr("group", 1) == 1 && conv.stringAttr("auto_pad").orElse("NOTSET").equals("NOTSET")
        && conv.intsAttr("pads").orElse(List.of()).stream().allMatch(p -> p == 0);
    if (!plain || weight.isEmpty() || bias.isEmpty() || weight.get().rank() != 4
        || weight.get().dtype() != DType.FLOAT || bias.get().dtype() != DType.FLOAT) {
      return model;
    }
    int out = (int) (long) weight.get().dims().get(0);
    int channels = (int) (long) weight.get().dims().get(1);
    int kernel = (int) (weight.get().elementCount() / ((long) out * channels));
    if (bias.get().elementCount() != out) {
      return model;
    }
    double[] error = meanError(image.get().quantizer(), sample, batchSize, channels);
    float[] w = weight.get().floats();
    PlanEntry wq = plan.byTensor().get(conv.input(1));
    float[] b = bias.get().floats();
    for (int o = 0; o < out; o++) {
      double shift = 0;
      for (int c = 0; c < channels; c++) {
        double sum = 0;
        for (int k = 0; k < kernel; k++) {
          float v = w[(o * channels + c) * kernel + k];
          sum += wq == null ? v : wq.quantizer().fakeQuant(v, wq.quantizer().perChannel() ? o : 0);
        }
        shift += sum * error[c];
      }
      b[o] = (float) (b[o] - shift);
    }
    List<Tensor> initializers = new ArrayList<>(graph.initializers().size());
    for (Tensor t : graph.initializers()) {
      initializers.add(t.name().equals(bias.get().name()) ? Tensor.ofFloats(t.name(), t.dims(), b) : t);
    }
    return model.withGraph(graph.withInitializers(initializers));
  }

  /** {@code E[Q(x_c) - x_c]} per channel of NCHW images, summed in image order. */
  static double[] meanError(Quantizer q, ImageDataset sample, int batchSize, int channels) throws VitqException {
    double[] sum = new double[channels];
    long[] count = new long[channels];
    sample.forEachBatch(batchSize, Progress.NONE, batch -> {
      if (batch.pixels().length != (long) batch.count() * channels * batch.height() * batch.width()) {
        throw new IllegalStateException("Images of " + channels + " channels expected");
      }
      int plane = batch.height() * batch.width();
      for (int i = 0; i < batch.count(); i++) {
        for (int c = 0; c < channels; c++) {
          int from = (i * channels + c) * plane;
          int qc = q.perChannel() ? c : 0;
          double s = 0;
          for (int p = from; p < from + plane; p++) {
            float x = batch.pixels()[p];
            s += (double) q.fakeQuant(x, qc) - x;
          }
          sum[c] += s;
          count[c] += plane;
        }
      }
    });
    double[] mean = new double[channels];
    for (int c = 0; c < channels; c++) {
      mean[c] = count[c] == 0 ? 0 : sum[c] / count[c];
    }
    return mean;
  }
}
