package dev.vitq.quantizer.search;

import dev.vitq.calibration.ActivationStats;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.Cut;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.LayerNormReparam;
import dev.vitq.quantizer.PlanEntry;
import dev.vitq.quantizer.QdqLowering;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Quantizer;
import dev.vitq.quantizer.Role;
import dev.vitq.quantizer.ScaleInit;
import io.jenetics.DoubleChromosome;
import io.jenetics.DoubleGene;
import io.jenetics.GaussianMutator;
import io.jenetics.Genotype;
import io.jenetics.MeanAlterer;
import io.jenetics.engine.Engine;
import io.jenetics.engine.EvolutionInit;
import io.jenetics.util.BatchExecutor;
import io.jenetics.util.ISeq;
import io.jenetics.util.RandomRegistry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.random.RandomGenerator;
import java.util.stream.Collectors;
import java.util.random.RandomGeneratorFactory;

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
 * {@snippet lang="java" :
 * EvolQ.Result r = EvolQ.search(model, vit, calibrated.plan(), images, SearchSettings.defaults(),
 *     InferenceSession.Config.defaults(), null, false, Progress.NONE, EvolQ.Listener.NONE);
 * }
 */
public final class EvolQ {
  private EvolQ() {}

  /** Images decoded at a time. */
  private static final int CHUNK = 64;
  /** What one ONNX Runtime run may hold of a simulated model's activations, roughly. */
  private static final long RUN_BYTES = 256L << 20;

  /**
   * Images per ONNX Runtime run: as many as the simulated model's activations of one block allow within
   * {@link #RUN_BYTES} (attention maps and MLP activations, a few copies each with fake quantization), at most
   * {@value #CHUNK}. ViT-Base at 224 runs 14 at a time; the 32-pixel shared model, all of a batch.
   */
  static int imagesPerRun(VitStructure vit) {
    long mlp = vit.blocks().get(0).mlp().fc1().outFeatures();
    long perImage = 4L * vit.tokens() * (4L * vit.heads() * vit.tokens() + 4L * mlp + 8L * vit.embedDim());
    return (int) Math.max(1, Math.min(CHUNK, RUN_BYTES / perImage));
  }

  /**
   * Runs a session over {@code count} images, {@code perRun} at a time: each of {@code batched} holds the images
   * along its first axis and is fed a slice of them, {@code fixed} is fed whole to every run; the outputs are joined
   * along their first axis. Memory holds one run's activations, whatever the count.
   */
  static HostTensor runChunked(InferenceSession session, Map<String, HostTensor> batched,
      Map<String, HostTensor> fixed, String output, int count, int perRun) throws VitqException {
    if (count == 0) {
      throw new IllegalArgumentException("No images to run");
    }
    ByteBuffer joined = null;
    HostTensor first = null;
    for (int start = 0; start < count; start += perRun) {
      int n = Math.min(perRun, count - start);
      Map<String, HostTensor> feed = new LinkedHashMap<>(fixed);
      for (Map.Entry<String, HostTensor> e : batched.entrySet()) {
        feed.put(e.getKey(), slice(e.getValue(), start, n, count));
      }
      HostTensor out = session.run(feed, List.of(output)).get(output);
      if (joined == null) {
        // Every run's output holds the same bytes per image: the first run sizes the whole.
        joined = ByteBuffer.allocateDirect(out.data().remaining() / n * count).order(ByteOrder.LITTLE_ENDIAN);
        first = out;
      }
      joined.put(out.data());
    }
    long[] shape = first.shape();
    shape[0] = count;
    return new HostTensor(first.dtype(), shape, joined.flip());
  }

  /** Images {@code start .. start + n} of a tensor holding {@code count} along its first axis. */
  private static HostTensor slice(HostTensor t, int start, int n, int count) {
    long[] shape = t.shape();
    int per = t.data().remaining() / count;
    shape[0] = n;
    return new HostTensor(t.dtype(), shape, t.data().slice(start * per, n * per));
  }

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
   * @param stateFile where the state is saved after every block visit, or null
   * @param resume continue from {@code stateFile} when it exists
   * @throws VitqException if the images cannot be used, ONNX Runtime fails, or the saved state is not this search's
   */
  public static Result search(Model model, VitStructure vit, QuantPlan initial, ImageDataset calibration,
      SearchSettings settings, InferenceSession.Config session, Path stateFile, boolean resume, Progress progress,
      Listener listener) throws VitqException {
    long t0 = System.nanoTime();
    SearchState saved = resume && stateFile != null && Files.exists(stateFile) ? read(stateFile) : null;
    if (saved != null) {
      check(saved, initial, settings);
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
    if (searchImages.count < 2) {
      throw new VitqException("The search needs at least 2 readable calibration images, found "
          + searchImages.count + ".");
    }
    String target = target(vit, initial, settings);
    Targets search;
    Targets validation;
    int[] heldOutReference;
    try (InferenceSession fp32 = InferenceSession.of(exposing(model, target, vit), session)) {
      long runStart = System.nanoTime();
      int perRun = imagesPerRun(vit);
      search = new Targets(searchImages, Images.run(fp32, vit.input(), target, searchImages, Map.of(), perRun));
      validation = new Targets(validationImages,
          Images.run(fp32, vit.input(), target, validationImages, Map.of(), perRun));
      heldOutReference = predictions(Images.run(fp32, vit.input(), vit.output(), heldOutImages, Map.of(), perRun),
          heldOutImages.count);
      fp32Nanos += System.nanoTime() - runStart;
    }
    double fp32Seconds = fp32Nanos / 1e9 * calibration.size() / Math.max(1, picked.size());

    Search s = new Search(model, vit, target, initial, settings, session, search, validation);
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
            plan = s.lastBest;
          }
          blocks.add(r);
          SearchState state = new SearchState(SearchState.FORMAT, initial.modelSha256(), settings, step + 1, plan,
              blocks, before, priorSeconds + (System.nanoTime() - t0) / 1e9);
          if (stateFile != null) {
            AtomicFile.write(stateFile, state.toJson().getBytes(StandardCharsets.UTF_8));
          }
          listener.blockDone(state);
        }
      }
      Double after = s.agreement(plan, heldOutImages, heldOutReference);
      long evaluations = blocks.stream().mapToLong(BlockResult::evaluations).sum();
      return new Result(plan.withSearch("evolq"), blocks, before, after, searchImages.count, heldOutImages.count,
          evaluations, priorSeconds + (System.nanoTime() - t0) / 1e9, fp32Seconds, start);
    } finally {
      s.close();
    }
  }

  /**
   * The tensor the loss reads: the model's output, or for {@link Objective#onFeatures} the input of its (first)
   * classifier.
   */
  private static String target(VitStructure vit, QuantPlan plan, SearchSettings settings) throws VitqException {
    if (!settings.objective().onFeatures()) {
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

  /** The model with {@code target} among its outputs. */
  private static Model exposing(Model model, String target, VitStructure vit) {
    return target.equals(vit.output()) ? model : ActivationStats.exposing(model, List.of(target));
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

  private static SearchState read(Path stateFile) throws VitqException {
    try {
      return SearchState.fromJson(Files.readString(stateFile));
    } catch (IOException e) {
      throw new VitqException("Cannot read the saved search state " + stateFile + ": " + e.getMessage() + ".", e);
    }
  }

  private static void check(SearchState saved, QuantPlan initial, SearchSettings settings) throws VitqException {
    if (!saved.modelSha256().equals(initial.modelSha256())) {
      throw new VitqException("The saved search state is for another model; remove it or run without --resume.");
    }
    if (!saved.settings().equals(settings)) {
      throw new VitqException("The saved search state was made with other search settings (" + saved.settings()
          + "); pass the same options or run without --resume.");
    }
    if (!saved.plan().byTensor().keySet().equals(initial.byTensor().keySet())
        || saved.plan().scheme() != initial.scheme()) {
      throw new VitqException("The saved search state quantizes other tensors than this scheme; run without "
          + "--resume.");
    }
  }

  private static int[] predictions(float[] logits, int images) {
    int[] out = new int[images];
    int classes = images == 0 ? 0 : logits.length / images;
    for (int i = 0; i < images; i++) {
      out[i] = Evaluation.argmax(logits, i * classes, classes);
    }
    return out;
  }

  // ---- the search over one model ------------------------------------------------------------------------------

  /** The sessions and cached tensors of one search. */
  private static final class Search implements AutoCloseable {
    private final Model model;
    private final VitStructure vit;
    /** The tensor the loss reads. */
    private final String target;
    private final SearchSettings settings;
    private final InferenceSession.Config config;
    private final Targets search;
    private final Targets validation;
    /** The whole model simulated, every scale an input: the held-out agreement of any plan. */
    private final InferenceSession full;
    /** Images per ONNX Runtime run, from the model's size. */
    private final int perRun;
    /** The plan of the best candidate of the last visit. */
    QuantPlan lastBest;

    Search(Model model, VitStructure vit, String target, QuantPlan initial, SearchSettings settings,
        InferenceSession.Config config, Targets search, Targets validation) throws VitqException {
      this.model = model;
      this.vit = vit;
      this.target = target;
      this.settings = settings;
      this.config = config;
      this.search = search;
      this.validation = validation;
      // Every plan of one scheme lowers to the same simulated graph: its scales are inputs.
      this.full = InferenceSession.of(QdqLowering.lower(model, initial, QdqLowering.Mode.SIMULATE), config);
      this.perRun = imagesPerRun(vit);
    }

    @Override
    public void close() {
      full.close();
    }

    /** Agreement of the plan's top-1 classes with the float model's on the held-out images, or null without any. */
    Double agreement(QuantPlan plan, Images heldOut, int[] heldOutReference) throws VitqException {
      if (heldOut.count == 0) {
        return null;
      }
      float[] logits = Images.run(full, vit.input(), vit.output(), heldOut, scales(plan, full.inputNames()),
          perRun);
      int[] predicted = predictions(logits, heldOut.count);
      int same = 0;
      for (int i = 0; i < predicted.length; i++) {
        same += predicted[i] == heldOutReference[i] ? 1 : 0;
      }
      return (double) same / predicted.length;
    }

    /**
     * One visit of one block: search its scales on the search batch, and keep the best candidate if it lowers the
     * loss there and on the validation images.
     *
     * <p>Only the block's own quantizers are simulated; every other one is deployed, so the blocks after it run on
     * ONNX Runtime's integer kernels (ViT-Base: about a quarter of the simulated cost) and the candidates are scored
     * on the arithmetic that ships. The blocks before it run once per visit, from the image to the block's input.
     */
    BlockResult visit(QuantPlan plan, int pass, int block, Progress.Task task) throws VitqException {
      List<PlanEntry> tuned = plan.entries().stream()
          .filter(e -> e.block() == block && searchable(e.quantizer()))
          // A reparameterised quantizer's scales are baked into the norm and weights of the simulated graph.
          .filter(e -> !LayerNormReparam.applies(e)).toList();
      Model mixed = exposing(QdqLowering.lower(model, plan, tuned.stream().map(PlanEntry::tensor)
          .collect(Collectors.toSet())), target, vit);
      String boundary = vit.blocks().get(block).norm1().input();
      Optional<Model> suffix = Cut.after(mixed, boundary, target, Set.of(vit.input()));
      if (suffix.isEmpty()) {
        // The blocks after this one need the image itself (a shape taken from it, say): run from the image.
        try (InferenceSession whole = InferenceSession.of(mixed, config)) {
          return visit(plan, pass, block, tuned, whole, images -> Map.of(vit.input(), images.tensor()), task);
        }
      }
      Model prefix = Cut.before(mixed, List.of(Value.of(boundary, new TensorType(DType.FLOAT, null))));
      try (InferenceSession before = InferenceSession.of(prefix, config);
          InferenceSession after = InferenceSession.of(suffix.get(), config)) {
        return visit(plan, pass, block, tuned, after, images -> Map.of(boundary,
            runChunked(before, Map.of(vit.input(), images.tensor()), Map.of(), boundary, images.count, perRun)),
            task);
      }
    }

    /** The feed that starts a visit's session for some images. */
    private interface Start {
      Map<String, HostTensor> feed(Images images) throws VitqException;
    }

    private BlockResult visit(QuantPlan plan, int pass, int block, List<PlanEntry> tuned, InferenceSession session,
        Start start, Progress.Task task) throws VitqException {
      int[] widths = geneWidths(tuned, settings.genes());
      Candidates candidates = new Candidates(plan, tuned, widths, start.feed(search.images), session, search);
      double[] unperturbed = new double[Arrays.stream(widths).sum()];
      double before = candidates.loss(unperturbed);
      RandomGenerator rng = RandomGeneratorFactory.of("L64X128MixRandom")
          .create(settings.seed() * 1_000_003L + pass * 1_009L + block);
      List<Double> perGeneration = tuned.isEmpty() ? List.of()
          : switch (settings.strategy()) {
            case EVOLUTION -> candidates.evolve(rng, pass, block, task);
            case RANDOM -> candidates.sample(rng, pass, block, task);
          };
      if (tuned.isEmpty()) {
        task.advance(settings.generations());
      }
      boolean accepted = candidates.bestLoss < before;
      Double checkBefore = null;
      Double checkAfter = null;
      int evaluations = candidates.evaluations;
      if (accepted && validation.images.count >= 2) {
        // A few hundred images fit far more than scales: a change must also help images it was not chosen on, by
        // more than the noise of which images those are.
        Candidates check = new Candidates(plan, tuned, widths, start.feed(validation.images), session, validation);
        double[] was = check.perImage(unperturbed);
        double[] now = check.perImage(candidates.best);
        checkBefore = mean(was);
        checkAfter = mean(now);
        evaluations += check.evaluations;
        accepted = significantlyLower(now, was);
      }
      lastBest = accepted ? apply(plan, tuned, widths, candidates.best) : plan;
      return new BlockResult(pass, block, before, accepted ? candidates.bestLoss : before, accepted, evaluations,
          perGeneration, checkBefore, checkAfter);
    }

    /** The candidates of one block visit: evaluation, memo and the best seen. */
    private final class Candidates {
      private final QuantPlan plan;
      private final List<PlanEntry> tuned;
      /** Genes per tuned entry. */
      private final int[] widths;
      private final int genes;
      private final Map<String, HostTensor> feed;
      private final InferenceSession session;
      private final Targets targets;
      private final Map<List<Double>, Double> memo = new HashMap<>();
      int evaluations;
      double bestLoss = Double.POSITIVE_INFINITY;
      double[] best;

      Candidates(QuantPlan plan, List<PlanEntry> tuned, int[] widths, Map<String, HostTensor> feed,
          InferenceSession session, Targets targets) {
        this.plan = plan;
        this.tuned = tuned;
        this.widths = widths;
        this.genes = Arrays.stream(widths).sum();
        this.feed = feed;
        this.session = session;
        this.targets = targets;
      }

      /** Each image's loss with the tuned scales multiplied by {@code exp(logFactors)}. */
      double[] perImage(double[] logFactors) throws VitqException {
        QuantPlan candidate = apply(plan, tuned, widths, logFactors);
        float[] out = runChunked(session, feed, scales(candidate, session.inputNames()), target,
            targets.images.count, perRun).floats();
        evaluations++;
        return settings.objective().perImage(out, targets.reference, targets.images.count, settings.temperature());
      }

      /** The loss with the tuned scales multiplied by {@code exp(logFactors)}. */
      double loss(double[] logFactors) throws VitqException {
        List<Double> key = Arrays.stream(logFactors).boxed().toList();
        Double known = memo.get(key);
        if (known != null) {
          return known;
        }
        double loss = mean(perImage(logFactors));
        memo.put(key, loss);
        // Strictly lower only: the first of equal candidates wins, so the result does not depend on ties.
        if (loss < bestLoss) {
          bestLoss = loss;
          best = logFactors.clone();
        }
        return loss;
      }

      List<Double> evolve(RandomGenerator rng, int pass, int block, Progress.Task task) throws VitqException {
        double r = settings.range();
        int n = genes;
        Engine<DoubleGene, Double> engine = Engine
            .builder((Genotype<DoubleGene> g) -> lossUnchecked(genes(g)), Genotype.of(DoubleChromosome.of(-r, r, n)))
            .minimizing()
            .populationSize(settings.population())
            .alterers(new GaussianMutator<>(0.3), new MeanAlterer<>(0.3))
            // One thread: ONNX Runtime already uses the cores, and the order of evaluations stays fixed.
            .executor(Runnable::run)
            .fitnessExecutor(BatchExecutor.of(Runnable::run))
            .build();
        List<DoubleGene> zeros = new ArrayList<>();
        for (int k = 0; k < n; k++) {
          zeros.add(DoubleGene.of(0, -r, r));
        }
        // The unperturbed scales are one of the first generation, so the search starts from where the block is.
        Genotype<DoubleGene> identity = Genotype.of(DoubleChromosome.of(zeros));
        EvolutionInit<DoubleGene> init = EvolutionInit.of(ISeq.of(List.of(identity)), 1L);
        List<Double> perGeneration = new ArrayList<>();
        try {
          RandomRegistry.using(rng, random -> engine.stream(init).limit(settings.generations()).forEach(result -> {
            perGeneration.add(bestLoss);
            task.advance(1);
            task.status(String.format("pass %d block %d gen %d loss %.4f", pass + 1, block + 1,
                result.generation(), bestLoss));
          }));
        } catch (Unchecked e) {
          throw e.cause;
        }
        return perGeneration;
      }

      /** Random search at evolution's largest budget, in generation-sized rounds for the convergence curve. */
      List<Double> sample(RandomGenerator rng, int pass, int block, Progress.Task task) throws VitqException {
        double r = settings.range();
        List<Double> perGeneration = new ArrayList<>();
        int offspring = (int) Math.round(0.6 * settings.population());
        for (int g = 0; g < settings.generations(); g++) {
          int round = g == 0 ? settings.population() : offspring;
          for (int k = 0; k < round; k++) {
            double[] f = new double[genes];
            for (int j = 0; j < f.length; j++) {
              f[j] = g == 0 && k == 0 ? 0 : rng.nextDouble(-r, r);
            }
            loss(f);
          }
          perGeneration.add(bestLoss);
          task.advance(1);
          task.status(String.format("pass %d block %d round %d loss %.4f", pass + 1, block + 1, g + 1, bestLoss));
        }
        return perGeneration;
      }

      private double lossUnchecked(double[] f) {
        try {
          return loss(f);
        } catch (VitqException e) {
          throw new Unchecked(e);
        }
      }
    }
  }

  /** Standard errors the validation loss must fall by before a block's new scales are kept. */
  static final double CHECK_STANDARD_ERRORS = 2;

  /**
   * Whether {@code after} is lower than {@code before} on the same images by more than {@value
   * #CHECK_STANDARD_ERRORS} standard errors of the mean per-image difference (a one-sided paired test): a change
   * that helps some images and hurts as many others is noise, not a better block.
   */
  static boolean significantlyLower(double[] after, double[] before) {
    int n = after.length;
    double[] d = new double[n];
    for (int i = 0; i < n; i++) {
      d[i] = after[i] - before[i];
    }
    double m = mean(d);
    double ss = 0;
    for (double x : d) {
      ss += (x - m) * (x - m);
    }
    double standardError = n > 1 ? Math.sqrt(ss / (n - 1) / n) : Double.POSITIVE_INFINITY;
    return m < 0 && m + CHECK_STANDARD_ERRORS * standardError < 0;
  }

  private static double mean(double[] v) {
    double sum = 0;
    for (double x : v) {
      sum += x;
    }
    return sum / v.length;
  }

  private static double[] genes(Genotype<DoubleGene> g) {
    return g.chromosome().as(DoubleChromosome.class).toArray();
  }

  /** A checked failure carried through Jenetics' stream. */
  private static final class Unchecked extends RuntimeException {
    final VitqException cause;

    Unchecked(VitqException cause) {
      super(cause);
      this.cause = cause;
    }
  }

  /** Genes per tuned entry: one, or one per output channel of a weight when genes are per channel. */
  static int[] geneWidths(List<PlanEntry> tuned, SearchSettings.Genes genes) {
    int[] widths = new int[tuned.size()];
    for (int j = 0; j < widths.length; j++) {
      PlanEntry e = tuned.get(j);
      widths[j] = genes == SearchSettings.Genes.CHANNEL && e.role() == Role.WEIGHT ? e.quantizer().scales().length : 1;
    }
    return widths;
  }

  /**
   * The plan with each tuned entry's scales multiplied by {@code exp} of its genes: {@code widths[j]} genes for entry
   * {@code j}, in order, one factor for all its scales or one per scale (a weight's output channels). Weight scales
   * stay on the float16 grid the deployed model stores them in; layer-norm inputs keep their power-of-two channel
   * factors exact.
   */
  static QuantPlan apply(QuantPlan plan, List<PlanEntry> tuned, int[] widths, double[] genes) {
    List<PlanEntry> updated = new ArrayList<>(tuned.size());
    int at = 0;
    for (int j = 0; j < tuned.size(); j++) {
      PlanEntry e = tuned.get(j);
      int w = widths[j];
      int first = at;
      at += w;
      if (Arrays.stream(genes, first, first + w).allMatch(g -> g == 0)) {
        continue;
      }
      float[] scales = e.quantizer().scales();
      float[] next = new float[scales.length];
      float[] input = QdqLowering.scaleInput(e);
      if (e.role() == Role.WEIGHT) {
        for (int c = 0; c < scales.length; c++) {
          next[c] = ScaleInit.toHalfGrid((float) (scales[c] * Math.exp(genes[first + (w == 1 ? 0 : c)])));
        }
      } else if (input.length == 1 && scales.length > 1) {
        float base = (float) (input[0] * Math.exp(genes[first]));
        for (int c = 0; c < scales.length; c++) {
          next[c] = base * (scales[c] / input[0]);
        }
      } else {
        double f = Math.exp(genes[first]);
        for (int c = 0; c < scales.length; c++) {
          next[c] = (float) (scales[c] * f);
        }
      }
      updated.add(e.with(e.quantizer().withScales(next)));
    }
    return updated.isEmpty() ? plan : plan.withUpdated(updated);
  }

  /** Whether the search scales a quantizer: uniform and twin uniform ones have scales; logarithmic ones do not. */
  static boolean searchable(Quantizer q) {
    return q.kind() == Quantizer.Kind.UNIFORM || q.kind() == Quantizer.Kind.TWIN;
  }

  /** The scale inputs of {@code inputNames} for a plan. */
  static Map<String, HostTensor> scales(QuantPlan plan, List<String> inputNames) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (PlanEntry e : plan.entries()) {
      String name = QdqLowering.SCALE_INPUT_PREFIX + e.tensor();
      if (searchable(e.quantizer()) && inputNames.contains(name)) {
        float[] s = QdqLowering.scaleInput(e);
        long[] shape = e.role() == Role.WEIGHT || s.length > 1 ? new long[] {s.length} : new long[0];
        out.put(name, HostTensor.ofFloats(shape, s));
      }
    }
    return out;
  }

  /** Images and the float model's outputs on them. */
  private record Targets(Images images, float[] reference) {}

  /** Decoded images held in memory. */
  record Images(float[] pixels, int count, int height, int width) {
    static Images load(ImageDataset data) throws VitqException {
      int plane = 3 * data.preprocessing().height() * data.preprocessing().width();
      float[] all = new float[data.size() * plane];
      int[] n = {0};
      if (data.size() > 0) {
        data.forEachBatch(CHUNK, Progress.NONE, b -> {
          System.arraycopy(b.pixels(), 0, all, n[0] * plane, b.count() * plane);
          n[0] += b.count();
        });
      }
      return new Images(Arrays.copyOf(all, n[0] * plane), n[0], data.preprocessing().height(),
          data.preprocessing().width());
    }

    /**
     * Each image blended with another of the set, {@code lambda * own + (1 - lambda) * other} with {@code lambda}
     * uniform in [0.3, 0.7] and the other from a seeded shuffle (never the image itself). Preprocessing is affine
     * per channel, so blending preprocessed pixels is blending the pictures.
     */
    Images blended(long seed) {
      if (count < 2) {
        return this;
      }
      int plane = 3 * height * width;
      Random random = new Random(seed);
      List<Integer> others = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        others.add(i);
      }
      Collections.shuffle(others, random);
      float[] out = new float[pixels.length];
      for (int i = 0; i < count; i++) {
        int other = others.get(i) == i ? (i + 1) % count : others.get(i);
        float lambda = (float) (0.3 + 0.4 * random.nextDouble());
        for (int k = 0; k < plane; k++) {
          out[i * plane + k] = lambda * pixels[i * plane + k] + (1 - lambda) * pixels[other * plane + k];
        }
      }
      return new Images(out, count, height, width);
    }

    HostTensor tensor() {
      return HostTensor.ofFloats(new long[] {count, 3, height, width}, pixels);
    }

    /** The first output of running all images through a session, {@code perRun} at a time. */
    static float[] run(InferenceSession session, String input, String output, Images images,
        Map<String, HostTensor> extra, int perRun) throws VitqException {
      return images.count == 0 ? new float[0]
          : runChunked(session, Map.of(input, images.tensor()), extra, output, images.count, perRun).floats();
    }
  }
}
