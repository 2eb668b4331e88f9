package dev.vitq.quantizer;

import dev.vitq.calibration.ActivationStats;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.calibration.TensorStats;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Model;
import dev.vitq.models.Tensor;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Calibration: one streaming pass of the calibration images through the float model gathers statistics of every
 * activation the scheme quantizes; scales then come from those statistics and from the weights.
 */
public final class Calibrator {
  private Calibrator() {}

  /**
   * Calibration settings.
   *
   * @param scheme bit widths
   * @param method scale initialisation
   * @param batchSize images per ONNX Runtime run
   * @param seed recorded in the plan
   * @param session ONNX Runtime settings
   * @param techniques the quantizers beyond per-tensor uniform ones to use where the model allows them
   */
  public record Settings(Scheme scheme, Method method, int batchSize, long seed, InferenceSession.Config session,
      Set<Technique> techniques) {
    public Settings {
      techniques = Set.copyOf(techniques);
    }

    /** Settings with the scheme's default techniques. */
    public Settings(Scheme scheme, Method method, int batchSize, long seed, InferenceSession.Config session) {
      this(scheme, method, batchSize, seed, session, Technique.defaults(scheme));
    }
  }

  /**
   * A calibrated plan and the statistics it came from.
   *
   * @param plan the initial quantization plan
   * @param stats statistics per activation tensor
   */
  public record Result(QuantPlan plan, Map<String, TensorStats> stats) {}

  /**
   * Calibrates a model.
   *
   * @param input the image input's name
   * @param sites what to quantize ({@link QuantSites#of} for a ViT, {@link QuantSites#generic} otherwise)
   * @param modelSha256 the float model's file hash, recorded in the plan
   * @throws VitqException if the images cannot be used or ONNX Runtime fails
   */
  public static Result calibrate(Model model, String input, List<QuantSite> sites, String modelSha256,
      ImageDataset data, Settings settings, Progress progress) throws VitqException {
    List<String> observed = new ArrayList<>();
    for (QuantSite s : QuantSites.activations(sites)) {
      observed.add(s.tensor());
    }
    Map<String, TensorStats> stats = ActivationStats.collect(model, input, observed, data,
        settings.batchSize(), settings.session(), progress);
    return new Result(fromStats(model, sites, modelSha256, stats, data.size() - data.skipped(),
        data.preprocessing(), settings), stats);
  }

  /**
   * A plan from statistics an earlier {@link #calibrate} gathered: the statistics do not depend on bit widths or
   * techniques, so one pass over the images serves every scheme of the same sites' tensors.
   *
   * @param images how many images the statistics came from, recorded in the plan
   * @throws VitqException if a technique cannot be applied where the sites ask for it
   */
  public static QuantPlan fromStats(Model model, List<QuantSite> sites, String modelSha256,
      Map<String, TensorStats> stats, int images, Preprocessing pre, Settings settings) throws VitqException {
    GraphIndex idx = GraphIndex.of(model.graph());
    // Activations first: a per-channel post-norm quantizer changes the weights of the layers after it, and those
    // weights' scales must come from the reparameterised values the lowering will quantize.
    Map<String, PlanEntry> activations = new LinkedHashMap<>();
    for (QuantSite s : sites) {
      if (s.role().isActivation()) {
        Quantizer q = s.role() == Role.LINEAR_INPUT && settings.techniques().contains(Technique.LN_REPARAM)
            && LayerNormReparam.find(idx, s.tensor()).isPresent()
            ? perChannel(stats.get(s.tensor()), s.bits())
            : initial(s, stats, idx, settings, pre);
        activations.put(s.tensor(), new PlanEntry(s.tensor(), s.role(), s.block(), q));
      }
    }
    GraphIndex weights = GraphIndex.of(LayerNormReparam.apply(model.graph(), List.copyOf(activations.values())));
    List<PlanEntry> entries = new ArrayList<>(sites.size());
    for (QuantSite s : sites) {
      entries.add(s.role().isActivation() ? activations.get(s.tensor())
          : new PlanEntry(s.tensor(), s.role(), s.block(), initial(s, stats, weights, settings, pre)));
    }
    return new QuantPlan(QuantPlan.FORMAT, modelSha256, settings.scheme(), settings.method(), "none",
        settings.seed(), images, QuantPlan.weightCorrections(settings.techniques()), entries);
  }

  /** Share of channels whose range the base scale of a layer-norm input covers without a power-of-two factor. */
  static final double TYPICAL_CHANNEL = 0.75;
  /** Largest power-of-two factor exponent of a layer-norm input channel. */
  static final int MAX_CHANNEL_SHIFT = 6;

  static Quantizer initial(QuantSite s, Map<String, TensorStats> stats, GraphIndex idx, Settings settings,
      Preprocessing pre) {
    Method method = settings.method();
    return switch (s.role()) {
      case WEIGHT -> {
        Tensor w = idx.initializer(s.tensor()).orElseThrow();
        long[] dims = w.dims().stream().mapToLong(Long::longValue).toArray();
        yield ScaleInit.weight(w.floats(), dims, s.axis(), s.bits(), method);
      }
      case CONV_INPUT -> image(pre, s.bits(), stats.get(s.tensor()), method);
      // Probabilities lie in [0, 1]: calibrated uniform levels at 8 bits, log2 levels (fine near 0) below.
      case SOFTMAX_OUTPUT -> s.bits() >= 8 ? ScaleInit.activation(stats.get(s.tensor()).histogram(), s.bits(), method)
          : ScaleInit.logScale(stats.get(s.tensor()).histogram(), settings.techniques().contains(
              Technique.LOG_SQRT2_SOFTMAX) ? Quantizer.logSqrt2(s.bits()) : Quantizer.log2(s.bits()));
      case NORM_INPUT -> settings.techniques().contains(Technique.NORM_INPUT_FACTORS)
          ? streamQuantizer(stats.get(s.tensor()), s.bits())
          : ScaleInit.activation(stats.get(s.tensor()).histogram(), s.bits(), method);
      // At 8 bits the uniform pair feeds fc2's integer kernel; below, no kernel reads it and two scales cost nothing.
      case GELU_OUTPUT -> s.bits() < 8 && settings.techniques().contains(Technique.TWIN_GELU)
          ? ScaleInit.twin(stats.get(s.tensor()).histogram(), s.bits(), method)
          : ScaleInit.activation(stats.get(s.tensor()).histogram(), s.bits(), method);
      default -> ScaleInit.activation(stats.get(s.tensor()).histogram(), s.bits(), method);
    };
  }

  /**
   * The image at 8 bits is the pixels themselves: per colour channel, scale {@code scale / std} and zero point
   * {@code mean / scale} reproduce the 0..255 values the preprocessing started from. Narrower schemes, or a
   * preprocessing whose zero points do not fit, fall back to the method's per-tensor range.
   */
  static Quantizer image(Preprocessing pre, int bits, TensorStats stats, Method method) {
    if (bits >= 8) {
      float[] scales = new float[3];
      int[] zeros = new int[3];
      boolean fits = true;
      for (int c = 0; c < 3; c++) {
        scales[c] = (float) (pre.scale() / pre.std()[c]);
        zeros[c] = (int) Math.round(pre.mean()[c] / pre.scale());
        fits &= zeros[c] >= 0 && zeros[c] <= 255 && Math.abs(pre.scale() * 255 - 1) < 1e-6;
      }
      if (fits) {
        return new Quantizer(Quantizer.Kind.UNIFORM, 8, false, 1, scales, zeros);
      }
    }
    return ScaleInit.activation(stats.histogram(), bits, method);
  }

  /**
   * A post-norm activation per channel (its last axis), each channel over its observed range: the ranges differ by
   * tens of times between channels, and within one channel the values are dense, so min-max per channel is close to
   * the best clipping.
   */
  static Quantizer perChannel(TensorStats stats, int bits) {
    float[] min = stats.channelMin();
    float[] max = stats.channelMax();
    float[] scales = new float[min.length];
    int[] zeros = new int[min.length];
    for (int c = 0; c < min.length; c++) {
      Quantizer q = Quantizer.asymmetric(bits, min[c], max[c]);
      scales[c] = q.scale(0);
      zeros[c] = q.zeroPoints()[0];
    }
    return new Quantizer(Quantizer.Kind.UNIFORM, bits, false, 2, scales, zeros);
  }

  /**
   * The residual stream: a base range covering the typical channel, widened by power-of-two factors for the few
   * channels tens of times wider (measured on the shared model: agreement 0.9852 against 0.9842 for the best
   * per-tensor range, while the stream was quantized for every reader). This is {@link Technique#NORM_INPUT_FACTORS},
   * and how a device/cloud split's boundary crosses.
   */
  public static Quantizer streamQuantizer(TensorStats stats, int bits) {
    float[] min = stats.channelMin();
    float[] max = stats.channelMax();
    float[] sortedMin = min.clone();
    float[] sortedMax = max.clone();
    Arrays.sort(sortedMin);
    Arrays.sort(sortedMax);
    int n = min.length;
    Quantizer base = Quantizer.asymmetric(bits, sortedMin[(int) ((1 - TYPICAL_CHANNEL) * n)],
        sortedMax[Math.min(n - 1, (int) (TYPICAL_CHANNEL * n))]);
    return ScaleInit.powerOfTwoChannels(base, min, max, 2, MAX_CHANNEL_SHIFT);
  }
}
