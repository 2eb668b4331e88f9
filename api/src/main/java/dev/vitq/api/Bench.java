package dev.vitq.api;

import dev.vitq.api.report.Reports;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.converter.ModelFiles;
import dev.vitq.models.Model;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.split.Bundle;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** The bench job: ONNX Runtime latency of a model file, or of a bundle's two halves, on a fixed random batch. */
final class Bench {
  private Bench() {}

  /** Untimed runs before measuring: ONNX Runtime allocates and tunes on the first ones. */
  static final int WARMUP_RUNS = 5;

  /**
   * Times a model in ONNX Runtime on a fixed random batch: the median and 90th percentile of {@code runs} timed runs
   * after {@value #WARMUP_RUNS} warm-up runs.
   *
   * @throws VitqException if the model cannot be loaded or run
   */
  static Reports.Bench bench(BenchRequest r) throws VitqException {
    Path model = r.target();
    int batch = r.batch();
    int runs = r.runs();
    checkBench(batch, runs);
    Model m = ModelFiles.read(model);
    if (Batches.fixedBatch(m) > 0 && Batches.fixedBatch(m) != batch) {
      throw new VitqException(ModelFiles.fileName(model) + "'s input has a fixed batch of " + Batches.fixedBatch(m)
          + "; bench it with --batch " + Batches.fixedBatch(m) + ".");
    }
    HostTensor x = randomImages(m, batch);
    double[] times;
    try (InferenceSession s = ModelFiles.open(model, m, InferenceSession.Config.defaults()
        .withThreads(r.threads()))) {
      Map<String, HostTensor> feed = Map.of(s.inputNames().get(0), x);
      times = time(() -> s.run(feed, List.of(s.outputNames().get(0))), runs);
    }
    double median = median(times);
    double p90 = times[Math.min(runs - 1, (int) Math.ceil(0.9 * runs) - 1)];
    return new Reports.Bench(model.toString(), batch, r.threads(), runs, median, p90, batch * 1000.0 / median);
  }

  /**
   * Times a bundle's two halves on a fixed random batch: the device model from the image, the cloud model from what
   * the device output; medians of {@code runs} timed runs after {@value #WARMUP_RUNS} warm-up runs each.
   *
   * @throws VitqException if the bundle cannot be loaded or run
   */
  static Reports.BundleBench benchBundle(BenchRequest r) throws VitqException {
    Path bundle = r.target();
    int batch = r.batch();
    int threads = r.threads();
    int runs = r.runs();
    checkBench(batch, runs);
    Bundle.Loaded b = Bundle.read(bundle);
    HostTensor x = randomImages(b.device(), batch);
    try (Bundle.Pair pair = Bundle.Pair.open(b, InferenceSession.Config.defaults().withThreads(threads))) {
      Map<String, HostTensor> wire = pair.encode(x);
      double device = median(time(() -> pair.encode(x), runs));
      double cloud = median(time(() -> pair.decode(wire), runs));
      long bytes = wire.get(Bundle.TOKENS).data().capacity() / batch;
      return new Reports.BundleBench(bundle.toString(), batch, threads, runs, device, cloud, bytes);
    }
  }

  private static void checkBench(int batch, int runs) throws VitqException {
    if (batch <= 0 || runs <= 0) {
      throw new VitqException("Batch and runs must be positive, got batch " + batch + " and runs " + runs + ".");
    }
  }

  /** A fixed pseudo-random batch shaped for the model's image input. */
  private static HostTensor randomImages(Model m, int batch) throws VitqException {
    Value input = PreprocessFlags.imageInput(m);
    var shape = input.type().shape();
    long h = shape.get(2).isFixed() ? shape.get(2).size() : -1;
    long w = shape.get(3).isFixed() ? shape.get(3).size() : -1;
    if (h <= 0 || w <= 0) {
      Preprocessing pre = PreprocessFlags.NONE.resolve(m);
      h = pre.height();
      w = pre.width();
    }
    float[] pixels = new float[Math.toIntExact(batch * 3 * h * w)];
    Random rng = new Random(0);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    return HostTensor.ofFloats(new long[] {batch, 3, h, w}, pixels);
  }

  /** One ONNX Runtime run. */
  private interface Run {
    void run() throws VitqException;
  }

  /** Sorted times in milliseconds of {@code runs} runs after the warm-up runs. */
  private static double[] time(Run run, int runs) throws VitqException {
    for (int i = 0; i < WARMUP_RUNS; i++) {
      run.run();
    }
    double[] times = new double[runs];
    for (int i = 0; i < runs; i++) {
      long t = System.nanoTime();
      run.run();
      times[i] = (System.nanoTime() - t) / 1e6;
    }
    Arrays.sort(times);
    return times;
  }

  private static double median(double[] sorted) {
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
