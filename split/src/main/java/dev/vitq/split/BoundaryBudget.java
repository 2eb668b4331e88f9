package dev.vitq.split;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.QuantPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Chooses how the boundary is compressed under a byte budget per image ({@code vitq export --max-bytes}): every
 * token reduction vitq has, each with the codec of the most components that fit at 8, 6 and 4 bits, fitted on one
 * half of the calibration images and scored on the other half against the float model: by agreement of the top-1
 * class for a classifier, by the mean cosine similarity of each image's output for an embedding model (whose arg-max
 * means nothing). The validation images are never seen.
 */
final class BoundaryBudget {
  /** At most this many calibration images fit the codecs, and as many more score them. */
  static final int HALF = 500;

  private BoundaryBudget() {}

  /**
   * One configuration tried.
   *
   * @param reduction which tokens cross
   * @param codec how they are coded
   * @param tokens tokens per image
   * @param bytesPerImage bytes per image on the wire
   * @param score against the float model on the scoring images: the share whose top-1 equals the float model's
   *     (a classifier), or the mean cosine similarity of the outputs (an embedding model)
   */
  record Candidate(Reduction reduction, BoundaryCodec codec, int tokens, long bytesPerImage, double score) {
    String describe() {
      return reduction.describe() + " (" + tokens + " tokens), " + codec;
    }
  }

  /**
   * The choice and everything tried, in the order tried.
   *
   * @param best the best score; among equals, the fewest bytes, then the first tried
   * @param tried every candidate
   * @param fitImages images the codecs were fitted on
   * @param scoreImages images they were scored on
   * @param classifier whether the scores are top-1 agreement (else mean cosine)
   */
  record Choice(Candidate best, List<Candidate> tried, int fitImages, int scoreImages, boolean classifier) {
    /** What the scores measure, in words: {@code agreement} or {@code mean cosine}. */
    String measure() {
      return classifier ? "agreement" : "mean cosine";
    }
  }

  /** The token reductions tried; those that do not fit the model drop out. */
  static List<Reduction> reductions(VitStructure vit) {
    int patches = vit.tokens() - vit.embedding().prefixTokens();
    List<Reduction> all = List.of(new Reduction.None(), new Reduction.Merge(patches / 4),
        new Reduction.Merge((patches + 1) / 2), new Reduction.Attention(0.75, false),
        new Reduction.Attention(0.5, true), new Reduction.Pool(2));
    List<Reduction> fit = new ArrayList<>();
    for (Reduction r : all) {
      try {
        Split.tokensAfter(vit, r);
        fit.add(r);
      } catch (VitqException e) {
        // The model cannot take this reduction (no class token or square grid, rotary, tokens out): no candidate.
      }
    }
    return fit;
  }

  /**
   * Tries every candidate under {@code maxBytes} per image, scored against {@code model}, the halves lowered from
   * {@code shipped} ({@link Split#of}).
   *
   * @throws VitqException if nothing fits the budget, or a model or the images cannot be used
   */
  static Choice choose(Model model, Model shipped, VitStructure vit, QuantPlan plan, int k, boolean floatCloud,
      long maxBytes, ImageDataset calibration, long seed, InferenceSession.Config config, int batch, Progress progress)
      throws VitqException {
    int width = vit.embedDim();
    ImageDataset shuffled = calibration.sample(calibration.size(), seed);
    int half = Math.min(HALF, shuffled.size() / 2);
    if (half < 8) {
      throw new VitqException("--max-bytes fits and scores the boundary coding on the calibration images, and "
          + calibration.size() + " are too few; pass at least 16.");
    }
    ImageDataset fit = shuffled.slice(0, half);
    ImageDataset score = shuffled.slice(half, 2 * half);
    boolean classifier = vit.classifier();
    Evaluation.Predictions reference = null;
    float[] referenceOutputs = null;
    try (InferenceSession s = InferenceSession.of(model, config)) {
      if (classifier) {
        reference = Evaluation.predict(s, score, batch, progress);
      } else {
        referenceOutputs = tokens(s, vit.output(), score, batch, progress);
      }
    }
    List<Candidate> tried = new ArrayList<>();
    for (Reduction r : reductions(vit)) {
      int tokens = Split.tokensAfter(vit, r);
      List<Integer> bitsThatFit = BoundaryCodec.BITS.stream()
          .filter(b -> BoundaryCodec.largestRank(maxBytes, tokens, width, b) >= 8).toList();
      if (bitsThatFit.isEmpty()) {
        continue;
      }
      Split.Probe probe = Split.probe(model, shipped, vit, plan, k, r, floatCloud);
      float[] fitTokens;
      float[] scoreTokens;
      try (InferenceSession device = InferenceSession.of(probe.device(), config)) {
        fitTokens = tokens(device, probe.tokens(), fit, batch, progress);
        scoreTokens = tokens(device, probe.tokens(), score, batch, progress);
      }
      int nFit = fitTokens.length / width;
      BoundaryCodec.Pca pca = BoundaryCodec.Pca.of(fitTokens, nFit, width);
      try (InferenceSession cloud = InferenceSession.of(probe.cloud(), config)) {
        if (!(r instanceof Reduction.None) && !takes(cloud, probe.start(), tokens, width)) {
          continue; // The graph after block K spells out the number of tokens: this reduction is not a candidate.
        }
        for (int bits : bitsThatFit) {
          int rank = BoundaryCodec.largestRank(maxBytes, tokens, width, bits);
          BoundaryCodec codec = BoundaryCodec.fit(fitTokens, nFit, width, rank, bits, pca);
          float[] decoded = codec.roundTrip(scoreTokens, scoreTokens.length / width);
          double s;
          if (classifier) {
            int[] predicted = predict(cloud, probe.start(), decoded, tokens, width, batch);
            s = new Evaluation.Predictions(predicted, reference.labels()).agreement(reference);
          } else {
            s = meanCosine(cloud, probe.start(), decoded, tokens, width, batch, referenceOutputs);
          }
          tried.add(new Candidate(r, codec, tokens, (long) tokens * codec.bytesPerToken(), s));
        }
      }
    }
    if (tried.isEmpty()) {
      throw new VitqException("No boundary coding fits " + maxBytes + " bytes per image: even " + minTokens(vit)
          + " tokens of 8 components at 4 bits take " + minTokens(vit) * 4L + "; raise --max-bytes.");
    }
    Candidate best = tried.get(0);
    for (Candidate c : tried) {
      if (c.score() > best.score() || c.score() == best.score() && c.bytesPerImage() < best.bytesPerImage()) {
        best = c;
      }
    }
    return new Choice(best, tried, fit.size(), score.size(), classifier);
  }

  private static int minTokens(VitStructure vit) {
    int min = vit.tokens();
    for (Reduction r : reductions(vit)) {
      try {
        min = Math.min(min, Split.tokensAfter(vit, r));
      } catch (VitqException e) {
        // reductions() keeps only those that fit
      }
    }
    return min;
  }

  /** The device probe's float tokens for every image, concatenated: [images * tokens, width]. */
  private static float[] tokens(InferenceSession device, String output, ImageDataset images, int batch,
      Progress progress) throws VitqException {
    List<float[]> parts = new ArrayList<>();
    String input = device.inputNames().get(0);
    images.forEachBatch(batch, progress, b -> parts.add(device.run(Map.of(input, HostTensor.ofFloats(b.shape(),
        b.pixels())), List.of(output)).get(output).floats()));
    int total = parts.stream().mapToInt(p -> p.length).sum();
    float[] all = new float[total];
    int at = 0;
    for (float[] p : parts) {
      System.arraycopy(p, 0, all, at, p.length);
      at += p.length;
    }
    return all;
  }

  /** The cloud probe's top-1 class for decoded tokens of {@code images} images. */
  private static int[] predict(InferenceSession cloud, String start, float[] tokens, int perImage, int width,
      int batch) throws VitqException {
    int per = perImage * width;
    int images = tokens.length / per;
    int[] predicted = new int[images];
    String out = cloud.outputNames().get(0);
    for (int from = 0; from < images; from += batch) {
      int n = Math.min(batch, images - from);
      float[] chunk = Arrays.copyOfRange(tokens, from * per, (from + n) * per);
      float[] logits = cloud.run(Map.of(start, HostTensor.ofFloats(new long[] {n, perImage, width}, chunk)),
          List.of(out)).get(out).floats();
      int classes = logits.length / n;
      for (int i = 0; i < n; i++) {
        predicted[from + i] = Evaluation.argmax(logits, i * classes, classes);
      }
    }
    return predicted;
  }

  /** Whether the cloud probe runs on one image of {@code tokens} tokens (zeros). */
  private static boolean takes(InferenceSession cloud, String start, int tokens, int width) {
    String out = cloud.outputNames().get(0);
    try {
      cloud.run(Map.of(start, HostTensor.ofFloats(new long[] {1, tokens, width}, new float[tokens * width])),
          List.of(out));
      return true;
    } catch (VitqException e) {
      return false;
    }
  }

  /**
   * The mean cosine similarity of the cloud probe's output for decoded tokens of {@code images} images with the
   * float model's output for the same images ({@code reference}, flattened per image in image order).
   */
  private static double meanCosine(InferenceSession cloud, String start, float[] tokens, int perImage, int width,
      int batch, float[] reference) throws VitqException {
    int per = perImage * width;
    int images = tokens.length / per;
    int outPer = reference.length / images;
    String out = cloud.outputNames().get(0);
    double sum = 0;
    for (int from = 0; from < images; from += batch) {
      int n = Math.min(batch, images - from);
      float[] chunk = Arrays.copyOfRange(tokens, from * per, (from + n) * per);
      float[] outputs = cloud.run(Map.of(start, HostTensor.ofFloats(new long[] {n, perImage, width}, chunk)),
          List.of(out)).get(out).floats();
      if (outputs.length != n * outPer) {
        throw new VitqException("The cloud half outputs " + outputs.length / n + " values per image and the float "
            + "model " + outPer + ", so they cannot be compared.");
      }
      for (int i = 0; i < n; i++) {
        int at = (from + i) * outPer;
        sum += Evaluation.cosine(outputs, i * outPer, reference, at, outPer);
      }
    }
    return sum / images;
  }
}
