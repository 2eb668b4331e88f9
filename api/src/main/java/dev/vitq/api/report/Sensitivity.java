package dev.vitq.api.report;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * How much each part of a model loses when only that part is quantized: the deployable model with one block's plan
 * entries (or the embedding's, or the head's) and every other tensor in float, run on a sample of images against the
 * float model. Read it to choose what to keep in float: the rows with the lowest agreement and SQNR cost the most.
 */
public final class Sensitivity {
  /** Images the sensitivity is measured on: enough to rank blocks, few enough to add seconds, not minutes. */
  public static final int IMAGES = 64;

  /**
   * One part's cost.
   *
   * @param part "embedding", "block N" (1-based) or "head", or "all" for the whole plan
   * @param tensors quantized tensors in that part
   * @param agreement share of sample images whose top-1 class equals the float model's
   * @param sqnrDb signal-to-quantization-noise ratio of the logits, in dB
   */
  public record Row(String part, int tensors, double agreement, double sqnrDb) {}

  private Sensitivity() {}

  /**
   * Measures every part of {@code plan} on a seeded sample of {@code images}, then the whole plan; {@code depth} 0
   * (a model that is not a ViT) measures only the whole plan.
   *
   * @param model the float model: the reference, and what each part is quantized in
   * @param shipped the float model whose lowering ships, for the whole plan: {@code model} with its weights and
   *     biases corrected when GPTQ or bias correction is on (the parts are measured with weights rounded to nearest,
   *     since corrected weights elsewhere would already be quantized)
   * @throws VitqException if ONNX Runtime fails
   */
  public static List<Row> of(Model model, Model shipped, QuantPlan plan, ImageDataset images,
      InferenceSession.Config config, int depth, long seed) throws VitqException {
    Sample sample = Sample.of(model, images, config, seed);
    Map<Integer, List<PlanEntry>> byBlock = new TreeMap<>();
    // A model quantized generically has no blocks to tell apart: only the whole plan is measured.
    for (PlanEntry e : depth == 0 ? List.<PlanEntry>of() : plan.entries()) {
      byBlock.computeIfAbsent(e.block(), k -> new ArrayList<>()).add(e);
    }
    List<Row> rows = new ArrayList<>();
    for (Map.Entry<Integer, List<PlanEntry>> part : byBlock.entrySet()) {
      QuantPlan only = new QuantPlan(plan.format(), plan.modelSha256(), plan.scheme(), plan.method(), plan.search(),
          plan.seed(), plan.calibrationImages(), plan.weightCorrections(), part.getValue());
      int b = part.getKey();
      String name = b < 0 ? "embedding" : b >= depth ? "head" : "block " + (b + 1);
      rows.add(sample.row(name, only));
    }
    rows.add(sample.row("all", plan.entries().size(), QdqLowering.lower(shipped, plan, QdqLowering.Mode.DEPLOY)));
    return rows;
  }

  /**
   * A seeded sample of {@link #IMAGES} images and the float model's outputs on them, kept to measure one part after
   * another: an accuracy budget measures the part it raised after every step.
   */
  public static final class Sample {
    private final Model model;
    private final InferenceSession.Config config;
    private final List<HostTensor> batches;
    private final int[] counts;
    private final float[][] reference;

    private Sample(Model model, InferenceSession.Config config, List<HostTensor> batches, float[][] reference) {
      this.model = model;
      this.config = config;
      this.batches = batches;
      this.counts = batches.stream().mapToInt(t -> (int) t.shape()[0]).toArray();
      this.reference = reference;
    }

    /**
     * Decodes the sample and runs the float model on it.
     *
     * @throws VitqException if an image cannot be used or ONNX Runtime fails
     */
    public static Sample of(Model model, ImageDataset images, InferenceSession.Config config, long seed)
        throws VitqException {
      List<HostTensor> batches = new ArrayList<>();
      images.sample(IMAGES, seed).forEachBatch(16, Progress.NONE,
          b -> batches.add(HostTensor.ofFloats(b.shape(), b.pixels())));
      return new Sample(model, config, batches, logits(model, batches, config));
    }

    /**
     * The float model with only {@code part} quantized (weights rounded to nearest), against the float model.
     *
     * @throws VitqException if ONNX Runtime fails
     */
    public Row row(String name, QuantPlan part) throws VitqException {
      return row(name, part.entries().size(), QdqLowering.lower(model, part, QdqLowering.Mode.DEPLOY));
    }

    Row row(String name, int tensors, Model quantized) throws VitqException {
      return Sensitivity.row(name, tensors, counts, reference, logits(quantized, batches, config));
    }
  }

  private static float[][] logits(Model m, List<HostTensor> batches, InferenceSession.Config config)
      throws VitqException {
    float[][] out = new float[batches.size()][];
    try (InferenceSession s = InferenceSession.of(m, config)) {
      String in = s.inputNames().get(0);
      String o = s.outputNames().get(0);
      for (int i = 0; i < batches.size(); i++) {
        out[i] = s.run(Map.of(in, batches.get(i)), List.of(o)).get(o).floats();
      }
    }
    return out;
  }

  private static Row row(String part, int tensors, int[] counts, float[][] reference, float[][] quantized) {
    int same = 0;
    int images = 0;
    double signal = 0;
    double noise = 0;
    for (int b = 0; b < reference.length; b++) {
      int n = reference[b].length / counts[b];
      for (int i = 0; i < counts[b]; i++) {
        if (Evaluation.argmax(reference[b], i * n, n) == Evaluation.argmax(quantized[b], i * n, n)) {
          same++;
        }
        images++;
      }
      for (int j = 0; j < reference[b].length; j++) {
        double d = reference[b][j] - quantized[b][j];
        signal += (double) reference[b][j] * reference[b][j];
        noise += d * d;
      }
    }
    double sqnr = noise == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(signal / noise);
    return new Row(part, tensors, images == 0 ? Double.NaN : (double) same / images, sqnr);
  }
}
