package dev.vitq.api;

import dev.vitq.api.report.ReportPages;
import dev.vitq.api.report.Reports;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.ModelFiles;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.split.Bundle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The eval job: top-1 and agreement of a classifier, or cosine, retrieval agreement and 1-NN accuracy of an
 * embedding model, for a model file (ONNX or ORT) or a bundle run device then cloud.
 */
final class Evaluate {
  private Evaluate() {}

  /**
   * Measures top-1 accuracy over a folder of labelled images (class sub-folders) and, given a reference model, the
   * share of images on which both top-1 classes agree. A bundle runs device then cloud on every batch, and what the
   * device outputs (the 8-bit tokens and their dequantization values) is all the cloud model gets.
   *
   * @throws VitqException if a model, the bundle or the images cannot be used
   */
  static Reports.Eval evaluate(EvalRequest r, Progress progress) throws VitqException {
    return r.bundle() != null ? evaluateBundle(r, progress) : evaluateAll(List.of(r.model()), r, progress).get(0);
  }

  /**
   * {@link #evaluate(EvalRequest, Progress)}, then {@code report.html} in {@code reportDir} (null: no report).
   *
   * @throws VitqException if a model, the bundle or the images cannot be used
   */
  static Reports.Eval evaluate(EvalRequest r, Progress progress, Path reportDir) throws VitqException {
    Reports.Eval e = evaluate(r, progress);
    if (reportDir != null) {
      ReportPages.eval(reportDir, r.reportSettings(e), e);
    }
    return e;
  }

  /** {@link #evaluate} for several models against one reference, which runs once. */
  static List<Reports.Eval> evaluateAll(List<Path> models, EvalRequest r, Progress progress)
      throws VitqException {
    InferenceSession.Config config = InferenceSession.Config.defaults().withThreads(r.threads());
    Preprocessing pre = r.preprocess().resolve(ModelFiles.read(models.get(0)));
    if (embedding(r.reference() != null ? r.reference() : models.get(0))) {
      Evaluation.Embeddings ref = r.reference() == null ? null
          : embed(r.reference(), ImageDataset.open(r.data(), pre), config, r.batchSize(), progress);
      List<Reports.Eval> out = new ArrayList<>();
      for (Path model : models) {
        ImageDataset images = ImageDataset.open(r.data(), pre);
        Evaluation.Embeddings e = embed(model, images, config, r.batchSize(), progress);
        out.add(embeddingEval(model.toString(), e, images, r.reference(), ref));
      }
      return out;
    }
    Evaluation.Predictions refPredictions = null;
    if (r.reference() != null) {
      refPredictions = predict(r.reference(), ImageDataset.open(r.data(), pre), config, r.batchSize(), progress);
    }
    List<Reports.Eval> out = new ArrayList<>();
    for (Path model : models) {
      ImageDataset images = ImageDataset.open(r.data(), pre);
      Evaluation.Predictions p = predict(model, images, config, r.batchSize(), progress);
      boolean labelled = !images.classes().isEmpty();
      out.add(new Reports.Eval(model.toString(), p.predicted().length, images.skipped(), labelled ? p.top1() : null,
          r.reference() == null ? null : r.reference().toString(), refPredictions == null ? null
          : p.agreement(refPredictions)));
    }
    return out;
  }

  /**
   * Whether a model's output is an embedding rather than a classifier's logits: an ONNX model recognised as an
   * encoder without a classifier. A file vitq cannot recognise (an ORT file, a quantized graph) is taken for a
   * classifier, as before; pass the float model as the reference to measure a quantized embedding model.
   */
  static boolean embedding(Path model) {
    if (!model.getFileName().toString().endsWith(".onnx")) {
      return false;
    }
    try {
      LoadedModel m = LoadedModel.load(model, PreprocessFlags.NONE);
      return m.vit() != null && !m.vit().classifier();
    } catch (VitqException e) {
      return false;
    }
  }

  private static Reports.Eval embeddingEval(String name, Evaluation.Embeddings e, ImageDataset images, Path reference,
      Evaluation.Embeddings ref) {
    boolean labelled = !images.classes().isEmpty();
    Double mean = null;
    Double p1 = null;
    Double retrieval = null;
    if (ref != null) {
      double[] cosines = e.cosines(ref);
      mean = Evaluation.mean(cosines);
      p1 = Evaluation.quantile(cosines, 0.01);
      retrieval = e.retrievalAgreement(ref);
    }
    return new Reports.Eval(name, e.vectors().length, images.skipped(), null,
        reference == null ? null : reference.toString(), null,
        new Reports.EmbeddingMeasures(mean, p1, retrieval, labelled ? e.nearestNeighbourAccuracy() : null));
  }

  /** The outputs of an ONNX or ORT file, one vector per image. */
  private static Evaluation.Embeddings embed(Path file, ImageDataset images, InferenceSession.Config config,
      int batchSize, Progress progress) throws VitqException {
    Model m = ModelFiles.read(file);
    PreprocessFlags.imageInput(m);
    try (InferenceSession s = ModelFiles.open(file, m, config)) {
      return Evaluation.embed(s, images, Batches.runBatch(m, batchSize), progress);
    }
  }

  /** Top-1 predictions of an ONNX or ORT file. */
  private static Evaluation.Predictions predict(Path file, ImageDataset images, InferenceSession.Config config,
      int batchSize, Progress progress) throws VitqException {
    Model m = ModelFiles.read(file);
    PreprocessFlags.imageInput(m);
    try (InferenceSession s = ModelFiles.open(file, m, config)) {
      return Evaluation.predict(s, images, Batches.runBatch(m, batchSize), progress);
    }
  }

  private static Reports.Eval evaluateBundle(EvalRequest r, Progress progress) throws VitqException {
    Path bundle = r.bundle();
    Path reference = r.reference();
    int batchSize = r.batchSize();
    Bundle.Loaded b = Bundle.read(bundle);
    InferenceSession.Config config = InferenceSession.Config.defaults().withThreads(r.threads());
    Preprocessing pre = r.preprocess().resolve(b.device());
    // The manifest says whether the cloud half outputs an embedding (bundles from before it did are classifiers).
    boolean embedding = !b.classifier() || (reference != null && embedding(reference));
    Evaluation.Predictions refPredictions = reference == null || embedding ? null
        : predict(reference, ImageDataset.open(r.data(), pre), config, batchSize, progress);
    Evaluation.Embeddings refEmbeddings = embedding
        ? embed(reference, ImageDataset.open(r.data(), pre), config, batchSize, progress) : null;
    ImageDataset images = ImageDataset.open(r.data(), pre);
    int run = Batches.runBatch(b.device(), batchSize);
    if (embedding) {
      try (Bundle.Pair pair = Bundle.Pair.open(b, config)) {
        return embeddingEval(bundle.toString(), pair.embed(images, run, progress), images, reference, refEmbeddings);
      }
    }
    int[] predicted = new int[images.size()];
    int[] labels = new int[images.size()];
    int[] n = {0};
    try (Bundle.Pair pair = Bundle.Pair.open(b, config)) {
      images.forEachBatch(run, progress, batch -> {
        float[] logits = pair.run(HostTensor.ofFloats(batch.shape(), batch.pixels())).floats();
        int classes = logits.length / batch.count();
        for (int i = 0; i < batch.count(); i++) {
          predicted[n[0]] = Evaluation.argmax(logits, i * classes, classes);
          labels[n[0]] = batch.labels()[i];
          n[0]++;
        }
      });
    }
    Evaluation.Predictions p = new Evaluation.Predictions(Arrays.copyOf(predicted, n[0]), Arrays.copyOf(labels, n[0]));
    return new Reports.Eval(bundle.toString(), n[0], images.skipped(), images.classes().isEmpty() ? null : p.top1(),
        reference == null ? null : reference.toString(), refPredictions == null ? null : p.agreement(refPredictions));
  }
}
