package dev.vitq.quantizer.search;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.MixedPrecision;
import dev.vitq.quantizer.MixedPrecision.Genes;
import dev.vitq.quantizer.QuantPlan;
import io.jenetics.Genotype;
import io.jenetics.IntegerChromosome;
import io.jenetics.IntegerGene;
import io.jenetics.Mutator;
import io.jenetics.Phenotype;
import io.jenetics.SinglePointCrossover;
import io.jenetics.TournamentSelector;
import io.jenetics.engine.Engine;
import io.jenetics.engine.EvolutionInit;
import io.jenetics.ext.moea.MOEA;
import io.jenetics.ext.moea.NSGA2Selector;
import io.jenetics.ext.moea.Vec;
import io.jenetics.util.BatchExecutor;
import io.jenetics.util.ISeq;
import io.jenetics.util.IntRange;
import io.jenetics.util.RandomRegistry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.random.RandomGeneratorFactory;

/**
 * Mixed precision by multi-objective search: NSGA-II (Jenetics) over the bits of every block's linear weights (4 or
 * 8) and of each activation group (8, 6 or 4), minimising the model's bytes and Evol-Q's global loss (InfoNCE
 * between the quantized and the float model's outputs on a calibration batch). Each candidate is scored on the model
 * that would ship (its deployed, integer-kernel form, run by ONNX Runtime); its bytes are estimated
 * ({@link MixedPrecision.Sizes}), exact for the uniform schemes the first generation starts from, so the front is
 * never worse than a uniform scheme. The points of the final front are then shipped once more to measure their exact
 * bytes, their batch-1 latency on this machine, and their agreement with the float model on held-out calibration
 * images.
 *
 * {@snippet lang="java" :
 * AutoSearch.Result r = AutoSearch.search(model, vit, space, images, AutoSearch.Settings.defaults(), session,
 *     plan -> QdqLowering.lower(model, plan, QdqLowering.Mode.DEPLOY), Progress.NONE);
 * }
 */
public final class AutoSearch {
  private AutoSearch() {}

  /** The model a plan ships as: what is scored, measured and written. */
  public interface Shipper {
    /** The deployable model of a plan. */
    Model ship(QuantPlan plan) throws VitqException;
  }

  /**
   * How the search runs.
   *
   * @param population candidates per generation
   * @param generations generations
   * @param batchSize calibration images the loss is measured on
   * @param heldOut further calibration images the front's agreement is measured on
   * @param temperature InfoNCE temperature
   * @param objective the loss against the float model's outputs (Evol-Q's; InfoNCE by default)
   * @param mutation probability of a gene's mutation
   * @param frontSize most points of the front measured and reported (a larger front is thinned evenly by size)
   * @param latencyRuns timed batch-1 runs per front point (after five untimed ones)
   * @param seed seed of the image sample and of the evolution
   */
  public record Settings(int population, int generations, int batchSize, int heldOut, double temperature,
      Objective objective, double mutation, int frontSize, int latencyRuns, long seed) {
    public Settings {
      if (population < 4 || generations < 1 || batchSize < 2 || heldOut < 0 || frontSize < 2 || latencyRuns < 1) {
        throw new IllegalArgumentException("The mixed-precision search needs a population of at least 4 (the uniform "
            + "schemes), a generation, 2 search images, a front of 2 and a latency run, got " + population + ", "
            + generations + ", " + batchSize + ", " + frontSize + " and " + latencyRuns + ".");
      }
      if (objective == null) {
        throw new IllegalArgumentException("The mixed-precision search needs an objective.");
      }
      if (objective.onFeatures()) {
        throw new IllegalArgumentException("The mixed-precision search scores the model's outputs; "
            + objective.cliName() + " is for --search evolq.");
      }
      if (!(temperature > 0) || !(mutation > 0) || mutation > 1) {
        throw new IllegalArgumentException("Temperature must be positive and the mutation rate in (0, 1], got "
            + temperature + " and " + mutation + ".");
      }
    }

    /**
     * The defaults: 128 search and 256 held-out images, as Evol-Q's; a population of 24 for 16 generations with a
     * 0.1 mutation rate (20 generations of 12 at 0.05 scored only 54 distinct candidates on the shared model, 12.8x a
     * float pass: children repeated their parents).
     */
    public static Settings defaults() {
      return new Settings(24, 16, 128, 256, 0.1, Objective.INFONCE, 0.1, 24, 20, 0);
    }

    public Settings withPopulation(int n) {
      return new Settings(n, generations, batchSize, heldOut, temperature, objective, mutation, frontSize,
          latencyRuns, seed);
    }

    public Settings withGenerations(int n) {
      return new Settings(population, n, batchSize, heldOut, temperature, objective, mutation, frontSize,
          latencyRuns, seed);
    }

    public Settings withBatchSize(int n) {
      return new Settings(population, generations, n, heldOut, temperature, objective, mutation, frontSize,
          latencyRuns, seed);
    }

    public Settings withHeldOut(int n) {
      return new Settings(population, generations, batchSize, n, temperature, objective, mutation, frontSize,
          latencyRuns, seed);
    }

    public Settings withFrontSize(int n) {
      return new Settings(population, generations, batchSize, heldOut, temperature, objective, mutation, n,
          latencyRuns, seed);
    }

    public Settings withLatencyRuns(int n) {
      return new Settings(population, generations, batchSize, heldOut, temperature, objective, mutation, frontSize,
          n, seed);
    }

    public Settings withObjective(Objective o, double t) {
      return new Settings(population, generations, batchSize, heldOut, t, o, mutation, frontSize, latencyRuns, seed);
    }

    public Settings withSeed(long s) {
      return new Settings(population, generations, batchSize, heldOut, temperature, objective, mutation, frontSize,
          latencyRuns, s);
    }
  }

  /**
   * A point of the front.
   *
   * @param name its bits, or the uniform scheme it is
   * @param genes its bits
   * @param plan its plan
   * @param loss the loss on the search images
   * @param estimatedBytes the size the search used
   * @param bytes the exact size of the shipped model
   * @param latencyMillis median batch-1 latency on this machine
   * @param agreement top-1 agreement with the float model on the held-out images (NaN without any)
   */
  public record Point(String name, Genes genes, QuantPlan plan, double loss, long estimatedBytes, long bytes,
      double latencyMillis, double agreement) {}

  /**
   * What a search found.
   *
   * @param front the non-dominated points (loss, bytes) among every candidate scored, by bytes
   * @param uniform the uniform schemes W8A8, W4A8, W8A6 (W6A6's size) and W4A4: loss and exact bytes
   * @param evaluations candidates scored
   * @param searchImages images the loss is measured on
   * @param heldOutImages images the agreement is measured on
   * @param searchSeconds wall time, front measurement included
   * @param fp32PassSeconds wall time of one float pass over the whole calibration set (decoding included)
   */
  public record Result(List<Point> front, List<Point> uniform, long evaluations, int searchImages, int heldOutImages,
      double searchSeconds, double fp32PassSeconds) {
    /** The search's wall time in float passes over the calibration set. */
    public double costRatio() {
      return searchSeconds / fp32PassSeconds;
    }
  }

  /** Names of the uniform seeds, in {@link Result#uniform()} order, with their bits. */
  private static final String[] UNIFORM = {"w8a8", "w4a8", "w8a6", "w4a4"};
  private static final int[][] UNIFORM_BITS = {{8, 8}, {4, 8}, {8, 6}, {4, 4}};

  /**
   * Searches the space.
   *
   * @throws VitqException if the images cannot be used or ONNX Runtime fails
   */
  public static Result search(Model model, VitStructure vit, MixedPrecision space, ImageDataset calibration,
      Settings settings, InferenceSession.Config session, Shipper shipper, Progress progress) throws VitqException {
    long t0 = System.nanoTime();
    ImageDataset picked = calibration.sample(settings.batchSize() + settings.heldOut(), settings.seed());
    int batch = Math.min(settings.batchSize(), picked.size());
    Images searchImages = Images.load(picked.slice(0, batch));
    Images heldOut = Images.load(picked.slice(batch, picked.size()));
    if (searchImages.count() < 2) {
      throw new VitqException("The mixed-precision search needs at least 2 readable calibration images, found "
          + searchImages.count() + ".");
    }
    int perRun = ChunkedRuns.imagesPerRun(vit);
    float[] reference;
    float[] heldOutReference;
    try (InferenceSession fp32 = InferenceSession.of(model, session)) {
      reference = Images.run(fp32, vit.input(), vit.output(), searchImages, Map.of(), perRun);
      heldOutReference = Images.run(fp32, vit.input(), vit.output(), heldOut, Map.of(), perRun);
    }
    double fp32Seconds = (System.nanoTime() - t0) / 1e9 * calibration.size() / Math.max(1, picked.size());

    Scorer scorer = new Scorer(vit, space, settings, session, shipper, searchImages, reference, perRun);
    // The uniform schemes first: their exact sizes calibrate the size estimate of every other point.
    long[] exact = new long[UNIFORM.length];
    Genes[] uniform = new Genes[UNIFORM.length];
    for (int u = 0; u < UNIFORM.length; u++) {
      uniform[u] = space.uniform(UNIFORM_BITS[u][0], UNIFORM_BITS[u][1]);
      exact[u] = scorer.exactBytes(uniform[u]);
    }
    scorer.sizes = MixedPrecision.Sizes.fit(space, exact[0], exact[1], exact[2], exact[3]);

    List<Genotype<IntegerGene>> seeds = new ArrayList<>();
    for (Genes g : uniform) {
      seeds.add(genotype(g));
    }
    // A ladder of sizes between W4A8 and W8A8 (the first or the last k blocks' weights at 8 bits): from uniform and
    // random starts alone, 95 candidates on the shared model never scored a point between the two, so the front
    // jumped from 3.07 MB to 5.72 MB.
    // Half the population, spread evenly over k = 1 .. depth - 1.
    int depth = space.depth();
    int rungs = Math.max(0, Math.min(depth - 1, (settings.population() - UNIFORM.length) / 4));
    int last = 0;
    for (int j = 1; j <= rungs; j++) {
      int k = (int) Math.round((double) j * depth / (rungs + 1));
      if (k <= last || k >= depth) {
        continue;
      }
      last = k;
      seeds.add(genotype(space.w8Blocks(0, k)));
      seeds.add(genotype(space.w8Blocks(depth - k, depth)));
    }
    Genotype<IntegerGene> factory = Genotype.of(
        IntegerChromosome.of(0, MixedPrecision.WEIGHT_BITS.length - 1, space.searchedWeights()),
        IntegerChromosome.of(0, MixedPrecision.ACTIVATION_BITS.length - 1, space.activationGroups()));
    Engine<IntegerGene, Vec<double[]>> engine = Engine
        .builder(scorer::fitness, factory)
        // Vec dominance prefers larger values: both objectives enter negated.
        .maximizing()
        .populationSize(settings.population())
        .offspringSelector(new TournamentSelector<>(3))
        .survivorsSelector(NSGA2Selector.ofVec())
        .alterers(new Mutator<>(settings.mutation()), new SinglePointCrossover<>(0.3))
        // One thread: ONNX Runtime already uses the cores, and the order of evaluations stays fixed.
        .executor(Runnable::run)
        .fitnessExecutor(BatchExecutor.of(Runnable::run))
        .build();
    List<Phenotype<IntegerGene, Vec<double[]>>> collected = new ArrayList<>();
    try (Progress.Task task = progress.start("auto", settings.generations())) {
      RandomRegistry.using(RandomGeneratorFactory.of("L64X128MixRandom").create(settings.seed()), random -> {
        ISeq<Phenotype<IntegerGene, Vec<double[]>>> set = engine.stream(EvolutionInit.of(ISeq.of(seeds), 1L))
            .limit(settings.generations())
            .peek(r -> {
              task.advance(1);
              task.status(String.format("generation %d, %d candidates", r.generation(), scorer.memo.size()));
            })
            .collect(MOEA.toParetoSet(IntRange.of(1, settings.frontSize())));
        set.forEach(collected::add);
      });
    } catch (Unchecked e) {
      throw e.cause;
    }

    // The front of every candidate scored, not only of the collector's set: MOEA.toParetoSet returned a single point
    // on the test model, so the front fell back to the uniform schemes. The collector's points are among them.
    Map<Genes, Scored> candidates = new LinkedHashMap<>(scorer.memo);
    for (Phenotype<IntegerGene, Vec<double[]>> p : collected) {
      Genes g = genes(p.genotype());
      candidates.put(g, scorer.score(g));
    }
    List<Map.Entry<Genes, Scored>> front = new ArrayList<>();
    for (Map.Entry<Genes, Scored> c : candidates.entrySet()) {
      boolean dominated = false;
      for (Scored o : candidates.values()) {
        dominated |= o.dominates(c.getValue());
      }
      if (!dominated) {
        front.add(c);
      }
    }
    front.sort(Comparator.comparingLong((Map.Entry<Genes, Scored> e) -> e.getValue().bytes)
        .thenComparingDouble(e -> e.getValue().loss).thenComparing(e -> e.getKey().toString()));
    // Measuring a point costs a session and a held-out run: at most frontSize, evenly spread by size, ends kept.
    if (front.size() > settings.frontSize()) {
      List<Map.Entry<Genes, Scored>> thinned = new ArrayList<>();
      int n = settings.frontSize();
      for (int i = 0; i < n; i++) {
        thinned.add(front.get((int) Math.round((double) i * (front.size() - 1) / (n - 1))));
      }
      front = thinned;
    }

    List<Point> points = new ArrayList<>();
    try (Progress.Task task = progress.start("front", front.size())) {
      for (Map.Entry<Genes, Scored> e : front) {
        points.add(scorer.measure(e.getKey(), e.getValue(), name(e.getKey(), uniform), heldOut, heldOutReference,
            perRun));
        task.advance(1);
      }
    }
    List<Point> uniformPoints = new ArrayList<>();
    for (int u = 0; u < UNIFORM.length; u++) {
      Scored s = scorer.score(uniform[u]);
      uniformPoints.add(new Point(UNIFORM[u], uniform[u], space.plan(uniform[u]), s.loss, s.bytes, exact[u], Double.NaN,
          Double.NaN));
    }
    return new Result(List.copyOf(points), List.copyOf(uniformPoints), scorer.memo.size(), searchImages.count(),
        heldOut.count(), (System.nanoTime() - t0) / 1e9, fp32Seconds);
  }

  private static String name(Genes g, Genes[] uniform) {
    for (int u = 0; u < uniform.length; u++) {
      if (uniform[u].equals(g)) {
        return UNIFORM[u];
      }
    }
    return g.toString();
  }

  private static Genotype<IntegerGene> genotype(Genes g) {
    int[] w = g.weightBits();
    int[] a = g.activationBits();
    List<IntegerGene> wg = new ArrayList<>();
    for (int b : w) {
      wg.add(IntegerGene.of(indexOf(MixedPrecision.WEIGHT_BITS, b), 0, MixedPrecision.WEIGHT_BITS.length - 1));
    }
    List<IntegerGene> ag = new ArrayList<>();
    for (int b : a) {
      ag.add(IntegerGene.of(indexOf(MixedPrecision.ACTIVATION_BITS, b), 0, MixedPrecision.ACTIVATION_BITS.length - 1));
    }
    return Genotype.of(IntegerChromosome.of(wg), IntegerChromosome.of(ag));
  }

  private static Genes genes(Genotype<IntegerGene> gt) {
    int[] w = gt.get(0).as(IntegerChromosome.class).toArray();
    int[] a = gt.get(1).as(IntegerChromosome.class).toArray();
    for (int i = 0; i < w.length; i++) {
      w[i] = MixedPrecision.WEIGHT_BITS[w[i]];
    }
    for (int i = 0; i < a.length; i++) {
      a[i] = MixedPrecision.ACTIVATION_BITS[a[i]];
    }
    return new Genes(w, a);
  }

  private static int indexOf(int[] options, int v) {
    for (int i = 0; i < options.length; i++) {
      if (options[i] == v) {
        return i;
      }
    }
    throw new IllegalArgumentException("Bits " + v + " not among " + Arrays.toString(options));
  }



  /** A candidate's objectives. */
  private record Scored(double loss, long bytes) {
    /** No worse in both, better in one. */
    boolean dominates(Scored o) {
      return loss <= o.loss && bytes <= o.bytes && (loss < o.loss || bytes < o.bytes);
    }
  }

  /** Scores candidates, each once. */
  private static final class Scorer {
    private final VitStructure vit;
    private final MixedPrecision space;
    private final Settings settings;
    private final InferenceSession.Config config;
    private final Shipper shipper;
    private final Images images;
    private final float[] reference;
    private final int perRun;
    /** Every candidate scored, in the order first asked for: the order the search and its results depend on. */
    final Map<Genes, Scored> memo = new LinkedHashMap<>();
    MixedPrecision.Sizes sizes;

    Scorer(VitStructure vit, MixedPrecision space, Settings settings, InferenceSession.Config config,
        Shipper shipper, Images images, float[] reference, int perRun) {
      this.vit = vit;
      this.space = space;
      this.settings = settings;
      this.config = config;
      this.shipper = shipper;
      this.images = images;
      this.reference = reference;
      this.perRun = perRun;
    }

    long exactBytes(Genes g) throws VitqException {
      return OnnxWriter.toBytes(shipper.ship(space.plan(g))).length;
    }

    Scored score(Genes g) throws VitqException {
      Scored known = memo.get(g);
      if (known != null) {
        return known;
      }
      double loss;
      try (InferenceSession s = InferenceSession.of(shipper.ship(space.plan(g)), config)) {
        float[] out = Images.run(s, vit.input(), vit.output(), images, Map.of(), perRun);
        loss = settings.objective().loss(out, reference, images.count(), settings.temperature());
      }
      Scored scored = new Scored(loss, sizes.bytes(space, g));
      memo.put(g, scored);
      return scored;
    }

    Vec<double[]> fitness(Genotype<IntegerGene> gt) {
      try {
        Scored s = score(genes(gt));
        return Vec.of(-s.loss, -s.bytes);
      } catch (VitqException e) {
        throw new Unchecked(e);
      }
    }

    /** Ships a front point and measures it: exact bytes, batch-1 latency, held-out agreement. */
    Point measure(Genes g, Scored s, String name, Images heldOut, float[] heldOutReference, int perRun)
        throws VitqException {
      QuantPlan plan = space.plan(g);
      Model shipped = shipper.ship(plan);
      long bytes = OnnxWriter.toBytes(shipped).length;
      double agreement = Double.NaN;
      double latency;
      try (InferenceSession session = InferenceSession.of(shipped, config)) {
        if (heldOut.count() > 0) {
          agreement = HeldOut.score(vit.classifier(), Images.run(session, vit.input(), vit.output(), heldOut,
              Map.of(), perRun), heldOutReference, heldOut.count());
        }
        latency = latency(session);
      }
      return new Point(name, g, plan, s.loss, s.bytes, bytes, latency, agreement);
    }

    /** Median batch-1 time of the first search image, after five untimed runs. */
    private double latency(InferenceSession session) throws VitqException {
      int plane = 3 * images.height() * images.width();
      HostTensor one = HostTensor.ofFloats(new long[] {1, 3, images.height(), images.width()},
          Arrays.copyOf(images.pixels(), plane));
      Map<String, HostTensor> feed = Map.of(vit.input(), one);
      List<String> out = List.of(vit.output());
      for (int i = 0; i < 5; i++) {
        session.run(feed, out);
      }
      double[] times = new double[settings.latencyRuns()];
      for (int i = 0; i < times.length; i++) {
        long t = System.nanoTime();
        session.run(feed, out);
        times[i] = (System.nanoTime() - t) / 1e6;
      }
      Arrays.sort(times);
      int n = times.length;
      return n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    }
  }

  /** A checked failure carried through Jenetics' stream. */
  private static final class Unchecked extends RuntimeException {
    final VitqException cause;

    Unchecked(VitqException cause) {
      super(cause);
      this.cause = cause;
    }
  }
}
