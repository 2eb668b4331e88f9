package dev.vitq.quantizer.search;

import dev.vitq.calibration.ActivationStats;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;
import java.util.stream.Collectors;

/**
 * The sessions and cached tensors of one Evol-Q search, and the search of one block's scales: an evolution (or a
 * random search) over the block's candidates, whose best is kept only if it also lowers the loss on the validation
 * images by more than their noise.
 */
final class BlockSearch implements AutoCloseable {
  /** Standard errors the validation loss must fall by before a block's new scales are kept. */
  static final double CHECK_STANDARD_ERRORS = 2;

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
  private QuantPlan lastBest;

  BlockSearch(Model model, VitStructure vit, String target, QuantPlan initial, SearchSettings settings,
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
    this.perRun = ChunkedRuns.imagesPerRun(vit);
  }

  /** The plan after the last visit: its best candidate's if that was accepted, else the plan it started from. */
  QuantPlan lastBest() {
    return lastBest;
  }

  @Override
  public void close() {
    full.close();
  }

  /**
   * The plan's {@link HeldOut} score against the float model's outputs on the held-out images (top-1 agreement, or
   * mean cosine for an embedding model), or null without any.
   */
  Double agreement(QuantPlan plan, Images heldOut, float[] heldOutReference) throws VitqException {
    if (heldOut.count() == 0) {
      return null;
    }
    float[] outputs = Images.run(full, vit.input(), vit.output(), heldOut, ScaleGenes.scales(plan, full.inputNames()),
        perRun);
    return HeldOut.score(vit.classifier(), outputs, heldOutReference, heldOut.count());
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
        .filter(e -> e.block() == block && ScaleGenes.searchable(e.quantizer()))
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
          ChunkedRuns.runChunked(before, Map.of(vit.input(), images.tensor()), Map.of(), boundary, images.count(),
              perRun)),
          task);
    }
  }

  /** The feed that starts a visit's session for some images. */
  private interface Start {
    Map<String, HostTensor> feed(Images images) throws VitqException;
  }

  private BlockResult visit(QuantPlan plan, int pass, int block, List<PlanEntry> tuned, InferenceSession session,
      Start start, Progress.Task task) throws VitqException {
    int[] widths = ScaleGenes.geneWidths(tuned, settings.genes());
    Candidates candidates = new Candidates(plan, tuned, widths, start.feed(search.images()), session, search, target,
        settings, perRun);
    double[] unperturbed = new double[Arrays.stream(widths).sum()];
    double before = candidates.loss(unperturbed);
    RandomGenerator rng = RandomGeneratorFactory.of("L64X128MixRandom")
        .create(settings.seed() * 1_000_003L + pass * 1_009L + block);
    List<Double> perGeneration = tuned.isEmpty() ? List.of()
        : switch (settings.strategy()) {
          case EVOLUTION -> evolve(candidates, rng, pass, block, task);
          case RANDOM -> sample(candidates, rng, pass, block, task);
        };
    if (tuned.isEmpty()) {
      task.advance(settings.generations());
    }
    boolean accepted = candidates.bestLoss() < before;
    Double checkBefore = null;
    Double checkAfter = null;
    int evaluations = candidates.evaluations();
    if (accepted && validation.images().count() >= 2) {
      // A few hundred images fit far more than scales: a change must also help images it was not chosen on, by
      // more than the noise of which images those are.
      Candidates check = new Candidates(plan, tuned, widths, start.feed(validation.images()), session, validation,
          target, settings, perRun);
      double[] was = check.perImage(unperturbed);
      double[] now = check.perImage(candidates.best());
      checkBefore = Candidates.mean(was);
      checkAfter = Candidates.mean(now);
      evaluations += check.evaluations();
      accepted = significantlyLower(now, was);
    }
    lastBest = accepted ? ScaleGenes.apply(plan, tuned, widths, candidates.best()) : plan;
    return new BlockResult(pass, block, before, accepted ? candidates.bestLoss() : before, accepted, evaluations,
        perGeneration, checkBefore, checkAfter);
  }

  private List<Double> evolve(Candidates candidates, RandomGenerator rng, int pass, int block, Progress.Task task)
      throws VitqException {
    double r = settings.range();
    int n = candidates.genes();
    Engine<DoubleGene, Double> engine = Engine
        .builder((Genotype<DoubleGene> g) -> lossUnchecked(candidates, genes(g)),
            Genotype.of(DoubleChromosome.of(-r, r, n)))
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
        perGeneration.add(candidates.bestLoss());
        task.advance(1);
        task.status(String.format("pass %d block %d gen %d loss %.4f", pass + 1, block + 1,
            result.generation(), candidates.bestLoss()));
      }));
    } catch (Unchecked e) {
      throw e.cause;
    }
    return perGeneration;
  }

  /** Random search at evolution's largest budget, in generation-sized rounds for the convergence curve. */
  private List<Double> sample(Candidates candidates, RandomGenerator rng, int pass, int block, Progress.Task task)
      throws VitqException {
    double r = settings.range();
    List<Double> perGeneration = new ArrayList<>();
    int offspring = (int) Math.round(0.6 * settings.population());
    for (int g = 0; g < settings.generations(); g++) {
      int round = g == 0 ? settings.population() : offspring;
      for (int k = 0; k < round; k++) {
        double[] f = new double[candidates.genes()];
        for (int j = 0; j < f.length; j++) {
          f[j] = g == 0 && k == 0 ? 0 : rng.nextDouble(-r, r);
        }
        candidates.loss(f);
      }
      perGeneration.add(candidates.bestLoss());
      task.advance(1);
      task.status(String.format("pass %d block %d round %d loss %.4f", pass + 1, block + 1, g + 1,
          candidates.bestLoss()));
    }
    return perGeneration;
  }

  private static double lossUnchecked(Candidates candidates, double[] f) {
    try {
      return candidates.loss(f);
    } catch (VitqException e) {
      throw new Unchecked(e);
    }
  }

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
    double m = Candidates.mean(d);
    double ss = 0;
    for (double x : d) {
      ss += (x - m) * (x - m);
    }
    double standardError = n > 1 ? Math.sqrt(ss / (n - 1) / n) : Double.POSITIVE_INFINITY;
    return m < 0 && m + CHECK_STANDARD_ERRORS * standardError < 0;
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

  /** The model with {@code target} among its outputs. */
  static Model exposing(Model model, String target, VitStructure vit) {
    return target.equals(vit.output()) ? model : ActivationStats.exposing(model, List.of(target));
  }
}
