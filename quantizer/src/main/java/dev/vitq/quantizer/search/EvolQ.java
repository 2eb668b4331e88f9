package dev.vitq.quantizer.search;

import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.LayerNormReparam;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QuantPlan;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Evol-Q (Frumkin, Gope and Marculescu, ICCV 2023): block by block, an evolutionary search over small multiplicative
 * perturbations of the block's quantization scales, judged by a global loss between the quantized model's outputs
 * and the float model's on a calibration batch. The loss landscape of a quantized ViT is too rough for gradients;
 * a population of perturbations finds better minima.
 *
 * <p>Speed: the candidates' scales enter a simulated (fake-quant) model as graph inputs, so no session is rebuilt
 * for a candidate; only block i is simulated, the blocks after it run deployed (integer kernels), and a candidate runs
 * blocks i..N from block i's input, computed once per visit; the float outputs are computed once.
 *
 * <p>This class runs the passes over the blocks and saves the state after each visit; the search of one block, the
 * scoring of its candidates through ONNX Runtime and the chunked session runs are package classes beside it.
 *
 * {@snippet lang="java" :
 * EvolQ.Result r = EvolQ.search(model, model, vit, calibrated.plan(), images, SearchSettings.defaults(),
 *     InferenceSession.Config.defaults(), null, false, Progress.NONE, EvolQ.Listener.NONE);
 * }
 */
public final class EvolQ {
  private EvolQ() {}

  /** Told after each block visit, once its state is saved. */
  public interface Listener {
    /** Does nothing. */
    Listener NONE = state -> {};

    /** A block visit finished and {@code state} was saved. */
    void blockDone(SearchState state) throws VitqException;
  }

  /**
   * What a search did.
   *
   * @param plan the refined plan
   * @param blocks every block visit, in order
   * @param heldOutBefore agreement with the float model on held-out calibration images, initial plan (null if none)
   * @param heldOutAfter the same with the refined plan
   * @param searchImages images the loss is measured on
   * @param heldOutImages images the agreement is measured on
   * @param evaluations candidates evaluated (including before a resume)
   * @param searchSeconds wall time of the search (including before a resume)
   * @param fp32PassSeconds wall time of one float pass over the whole calibration set (decoding included), from
   *     the measured rate of the float pass this search makes
   * @param resumedAtStep the block visit the search resumed at, or 0
   */
  public record Result(QuantPlan plan, List<BlockResult> blocks, Double heldOutBefore, Double heldOutAfter,
      int searchImages, int heldOutImages, long evaluations, double searchSeconds, double fp32PassSeconds,
      int resumedAtStep) {

    /** The search's wall time in float passes over the calibration set. */
    public double costRatio() {
      return searchSeconds / fp32PassSeconds;
    }
  }

  /**
   * Searches the block scales of {@code initial}.
   *
   * @param model the model the plan is lowered onto (its weights corrected as shipped)
   * @param reference the float model whose outputs the quantized one should match: {@code model} before its weights
   *     and biases were corrected (a corrected patch bias, say, is right only behind the quantized image)
   * @param stateFile where the state is saved after every block visit, or null
   * @param resume continue from {@code stateFile} when it exists
   * @throws VitqException if the images cannot be used, ONNX Runtime fails, or the saved state is not this search's
   */
  public static Result search(Model model, Model reference, VitStructure vit, QuantPlan initial,
      ImageDataset calibration,
      SearchSettings settings, InferenceSession.Config session, Path stateFile, boolean resume, Progress progress,
      Listener listener) throws VitqException {
    long t0 = System.nanoTime();
    SearchState saved = resume && stateFile != null && Files.exists(stateFile) ? SearchState.read(stateFile) : null;
    if (saved != null) {
      saved.checkResumes(initial, settings);
    }
    // Three disjoint shares of the calibration images: the search batch, the check a new block must also pass, and
    // the held-out images the report measures agreement on.
    ImageDataset picked = calibration.sample(settings.batchSize() + settings.validation() + settings.heldOut(),
        settings.seed());
    int batch = Math.min(settings.batchSize(), picked.size());
    int checked = Math.min(batch + settings.validation(), picked.size());
    // The float pass this search makes (decoding and running, not opening the session) is timed to express the
    // search's cost in float passes over the whole calibration set.
    long decodeStart = System.nanoTime();
    Images searchImages = Images.load(picked.slice(0, batch));
    Images validationImages = Images.load(picked.slice(batch, checked));
    if (settings.inputs() == SearchSettings.Inputs.BLENDS) {
      // The held-out images stay as they are: the report's agreement is on images like the user's.
      searchImages = searchImages.blended(settings.seed());
      validationImages = validationImages.blended(settings.seed() + 1);
    }
    Images heldOutImages = Images.load(picked.slice(checked, picked.size()));
    long fp32Nanos = System.nanoTime() - decodeStart;
    if (searchImages.count() < 2) {
      throw new VitqException("The search needs at least 2 readable calibration images, found "
          + searchImages.count() + ".");
    }
    String target = target(vit, initial, settings);
    Targets search;
    Targets validation;
    float[] heldOutReference;
    try (InferenceSession fp32 = InferenceSession.of(BlockSearch.exposing(reference, target, vit), session)) {
      long runStart = System.nanoTime();
      int perRun = ChunkedRuns.imagesPerRun(vit);
      search = new Targets(searchImages, Images.run(fp32, vit.input(), target, searchImages, Map.of(), perRun));
      validation = new Targets(validationImages,
          Images.run(fp32, vit.input(), target, validationImages, Map.of(), perRun));
      heldOutReference = Images.run(fp32, vit.input(), vit.output(), heldOutImages, Map.of(), perRun);
      fp32Nanos += System.nanoTime() - runStart;
    }
    double fp32Seconds = fp32Nanos / 1e9 * calibration.size() / Math.max(1, picked.size());

    BlockSearch s = new BlockSearch(model, vit, target, initial, settings, session, search, validation);
    try {
      QuantPlan plan = saved == null ? initial : saved.plan();
      List<BlockResult> blocks = new ArrayList<>(saved == null ? List.of() : saved.blocks());
      Double before = saved != null ? saved.heldOutBefore()
          : s.agreement(initial, heldOutImages, heldOutReference);
      double priorSeconds = saved == null ? 0 : saved.searchSeconds();
      int depth = vit.blocks().size();
      int steps = settings.passes() * depth;
      int start = saved == null ? 0 : saved.completedSteps();
      try (Progress.Task task = progress.start("evolq", (long) steps * settings.generations())) {
        task.advance((long) start * settings.generations());
        for (int step = start; step < steps; step++) {
          int pass = step / depth;
          int block = order(settings, pass, depth).get(step % depth);
          BlockResult r = s.visit(plan, pass, block, task);
          if (r.accepted()) {
            plan = s.lastBest();
          }
          blocks.add(r);
          SearchState state = new SearchState(SearchState.FORMAT, initial.modelSha256(), settings, step + 1, plan,
              blocks, before, priorSeconds + (System.nanoTime() - t0) / 1e9);
          if (stateFile != null) {
            state.save(stateFile);
          }
          listener.blockDone(state);
        }
      }
      Double after = s.agreement(plan, heldOutImages, heldOutReference);
      long evaluations = blocks.stream().mapToLong(BlockResult::evaluations).sum();
      return new Result(plan.withSearch("evolq"), blocks, before, after, searchImages.count(), heldOutImages.count(),
          evaluations, priorSeconds + (System.nanoTime() - t0) / 1e9, fp32Seconds, start);
    } finally {
      s.close();
    }
  }

  /**
   * The tensor the loss reads: the model's output, or for {@link Objective#onFeatures} the input of its (first)
   * classifier; an encoder without one is compared on its output, which is its features.
   */
  private static String target(VitStructure vit, QuantPlan plan, SearchSettings settings) throws VitqException {
    if (!settings.objective().onFeatures() || vit.head().linears().isEmpty()) {
      return vit.output();
    }
    String features = vit.head().linears().get(0).input();
    PlanEntry e = plan.byTensor().get(features);
    if (e != null && LayerNormReparam.applies(e)) {
      throw new VitqException("The objective " + settings.objective().cliName() + " cannot read the classifier's "
          + "input of this model: ln-reparam rescales it; use infonce or --quantizers without ln-reparam.");
    }
    return features;
  }

  /** The blocks of one pass, in visiting order. */
  static List<Integer> order(SearchSettings settings, int pass, int depth) {
    List<Integer> blocks = new ArrayList<>();
    for (int i = 0; i < depth; i++) {
      blocks.add(i);
    }
    switch (settings.order()) {
      case FORWARD -> { }
      case REVERSE -> Collections.reverse(blocks);
      case RANDOM -> Collections.shuffle(blocks, new Random(settings.seed() * 31 + pass));
    }
    return blocks;
  }
}
