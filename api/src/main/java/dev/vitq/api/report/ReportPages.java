package dev.vitq.api.report;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.ModelFiles;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.quantizer.search.BlockResult;
import dev.vitq.quantizer.search.EvolQ;
import dev.vitq.split.Bundle;
import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The {@code report.html} of each command: which sections a quantize, an export or an eval report holds, built from
 * the command's settings (as the job names them) and report. {@link HtmlReport} draws them.
 */
public final class ReportPages {
  private ReportPages() {}

  /**
   * The quantize report: settings, result, per-block sensitivity, the search's convergence when one ran, and the
   * Pareto front when a search produced candidates (a mixed-precision search passes them as {@code pareto}; an empty
   * list adds nothing).
   */
  public static Path quantize(Path dir, Map<String, Object> settings, Reports.Quantize q,
      List<Sensitivity.Row> sensitivity, EvolQ.Result search, List<ParetoPoint> pareto) throws VitqException {
    HtmlReport page = new HtmlReport("vitq quantize: " + ModelFiles.fileName(Path.of(q.source())))
        .settings("Settings", settings)
        .table("Result", "", List.of("output", "bytes", "quantized tensors", "calibration images", "calibration s",
            "search s", "total s"), List.of(List.of(q.output(), q.bytes(), q.quantizedTensors(),
            q.calibrationImages(), q.calibrationMillis() / 1000.0, q.searchMillis() / 1000.0,
            q.totalMillis() / 1000.0)));
    if (q.budget() != null) {
      budget(page, q.budget());
    }
    sensitivity(page, sensitivity);
    if (search != null) {
      convergence(page, search);
    }
    page.pareto(pareto);
    return page.write(dir);
  }

  /** The accuracy budget: the starting point, each part raised and what it brought, on the held-out images. */
  private static void budget(HtmlReport page, Reports.Budget b) {
    List<List<Object>> rows = new ArrayList<>();
    rows.add(List.of("start: " + b.start(), "", b.startBytes(), b.startScore(), b.startDrop()));
    for (Reports.Raise x : b.raised()) {
      rows.add(List.of(x.part() + ": " + x.to(), x.sqnrDb(), x.bytes(), x.score(), x.drop()));
    }
    page.table("Accuracy budget", String.format(java.util.Locale.ROOT, "Drop in %s from the float model's %.4f on %d "
        + "held-out images of %s, at most %s: %s. Each row raises the part whose output SQNR alone (on calibration "
        + "images) was lowest.", b.measure(), b.floatScore(), b.images(), b.heldOut(), b.maxDrop(),
        b.drop() <= b.maxDrop() ? "met" : "not met"), List.of("point", "part SQNR dB", "bytes", b.measure(), "drop"),
        rows);
  }

  /** The export report: settings, the bundle's bytes against agreement, and per-block sensitivity. */
  public static Path export(Path dir, Map<String, Object> settings, Reports.Export x,
      List<Sensitivity.Row> sensitivity, Double bundleAgreement, int sampleImages) throws VitqException {
    HtmlReport page = new HtmlReport("vitq export: " + ModelFiles.fileName(Path.of(x.source())))
        .settings("Settings", settings);
    List<Object> row = new ArrayList<>(List.of(x.split(), x.tokensOut() + " of " + x.tokensIn(), x.bytesPerImage(),
        x.float32BytesPerImage(), (double) x.float32BytesPerImage() / x.bytesPerImage(), x.deviceBytes(),
        x.cloudBytes()));
    row.add(bundleAgreement == null ? "not measured (no images)" : bundleAgreement);
    boolean cosine = "mean cosine".equals(x.measure());
    String note = bundleAgreement == null ? "" : cosine ? "Mean cosine: of each of " + sampleImages
        + " calibration images' output, run device then cloud, with the float model's."
        : "Agreement: share of " + sampleImages + " calibration images whose top-1 class, run device then cloud, "
        + "equals the float model's.";
    page.table("Split: bytes against accuracy", note,
        List.of("device blocks", "tokens sent", "bytes per image", "float32 bytes per image", "reduction",
            "device.onnx bytes", "cloud.onnx bytes", cosine ? "mean cosine" : "agreement"), List.of(row));
    sensitivity(page, sensitivity);
    return page.write(dir);
  }

  /** The eval report: settings, the measures, and a chart of them. */
  public static Path eval(Path dir, Map<String, Object> settings, Reports.Eval e) throws VitqException {
    if (e.embedding() != null) {
      return embeddingEval(dir, settings, e);
    }
    HtmlReport page = new HtmlReport("vitq eval: " + ModelFiles.fileName(Path.of(e.model())))
        .settings("Settings", settings)
        .table("Result", "", List.of("images", "skipped", "top-1", "agreement"), List.of(List.of(e.images(),
            e.skippedImages(), e.top1() == null ? "unlabelled" : e.top1(), e.agreement() == null ? "no reference"
            : e.agreement())));
    DefaultCategoryDataset data = new DefaultCategoryDataset();
    if (e.top1() != null) {
      data.addValue(e.top1(), "measure", "top-1");
    }
    if (e.agreement() != null) {
      data.addValue(e.agreement(), "measure", "agreement");
    }
    JFreeChart c = ChartFactory.createBarChart("Top-1 and agreement", "", "share of images", data,
        PlotOrientation.VERTICAL, false, false, false);
    c.getCategoryPlot().getRangeAxis().setRange(0, 1);
    c.getCategoryPlot().setBackgroundPaint(Color.WHITE);
    return page.chart("Measures", "", c).write(dir);
  }

  /** The eval report of an embedding model: cosine with the reference, retrieval agreement, 1-NN accuracy. */
  private static Path embeddingEval(Path dir, Map<String, Object> settings, Reports.Eval e) throws VitqException {
    Reports.EmbeddingMeasures m = e.embedding();
    HtmlReport page = new HtmlReport("vitq eval: " + ModelFiles.fileName(Path.of(e.model())))
        .settings("Settings", settings)
        .table("Result", "Each image's output against the reference's: cosine similarity (mean and 1st percentile) "
            + "and whether its nearest other image is the same; 1-NN accuracy on labelled images.",
            List.of("images", "skipped", "cosine mean", "cosine 1st percentile", "retrieval agreement",
                "1-NN accuracy"), List.of(List.of(e.images(), e.skippedImages(), orNone(m.cosineMean()),
                orNone(m.cosineP1()), orNone(m.retrievalAgreement()), m.nearestNeighbourAccuracy() == null
                    ? "unlabelled" : m.nearestNeighbourAccuracy())));
    DefaultCategoryDataset data = new DefaultCategoryDataset();
    if (m.cosineMean() != null) {
      data.addValue(m.cosineMean(), "measure", "cosine mean");
      data.addValue(m.cosineP1(), "measure", "cosine 1st pct");
      data.addValue(m.retrievalAgreement(), "measure", "retrieval");
    }
    if (m.nearestNeighbourAccuracy() != null) {
      data.addValue(m.nearestNeighbourAccuracy(), "measure", "1-NN accuracy");
    }
    JFreeChart c = ChartFactory.createBarChart("Embedding measures", "", "", data, PlotOrientation.VERTICAL, false,
        false, false);
    c.getCategoryPlot().getRangeAxis().setRange(0, 1);
    c.getCategoryPlot().setBackgroundPaint(Color.WHITE);
    return page.chart("Measures", "", c).write(dir);
  }

  private static Object orNone(Double v) {
    return v == null ? "no reference" : v;
  }

  private static void sensitivity(HtmlReport page, List<Sensitivity.Row> rows) {
    if (rows == null || rows.isEmpty()) {
      return;
    }
    List<List<?>> table = new ArrayList<>();
    DefaultCategoryDataset sqnr = new DefaultCategoryDataset();
    for (Sensitivity.Row s : rows) {
      table.add(List.of(s.part(), s.tensors(), s.agreement(), s.sqnrDb()));
      if (!s.part().equals("all") && Double.isFinite(s.sqnrDb())) {
        // Short labels fit a dozen bars: blocks by number.
        sqnr.addValue(s.sqnrDb(), "SQNR", s.part().replace("block ", "").replace("embedding", "embed"));
      }
    }
    page.table("Per-block sensitivity", "Each row quantizes only that part (every other tensor stays float) and "
            + "runs the deployable model on " + Sensitivity.IMAGES + " calibration images: agreement is the share "
            + "whose top-1 class equals the float model's, SQNR the logits' signal-to-quantization-noise ratio. The "
            + "lowest rows are the first to keep in float; 'all' is the whole plan.",
        List.of("part", "quantized tensors", "agreement", "SQNR dB"), table);
    // SQNR rather than agreement: at 8 bits one block alone rarely changes a top-1 class on 64 images, while the
    // logits' noise still ranks the blocks.
    JFreeChart c = ChartFactory.createBarChart("Logit SQNR when only this part is quantized (lower costs more)",
        "part (blocks by number)", "SQNR dB", sqnr, PlotOrientation.VERTICAL, false, false, false);
    c.getCategoryPlot().setBackgroundPaint(Color.WHITE);
    page.chart("Sensitivity chart", "", c);
  }

  private static void convergence(HtmlReport page, EvolQ.Result search) {
    XYSeriesCollection curves = new XYSeriesCollection();
    XYSeries before = new XYSeries("before");
    XYSeries after = new XYSeries("after");
    List<List<?>> rows = new ArrayList<>();
    int step = 0;
    for (BlockResult b : search.blocks()) {
      XYSeries curve = new XYSeries("pass " + (b.pass() + 1) + " block " + (b.block() + 1));
      for (int g = 0; g < b.bestPerGeneration().size(); g++) {
        curve.add(g + 1, b.bestPerGeneration().get(g));
      }
      curves.addSeries(curve);
      before.add(step, b.lossBefore());
      after.add(step, b.lossAfter());
      rows.add(List.of(b.pass() + 1, b.block() + 1, b.lossBefore(), b.lossAfter(), b.accepted() ? "yes" : "no",
          b.evaluations()));
      step++;
    }
    XYSeriesCollection losses = new XYSeriesCollection();
    losses.addSeries(before);
    losses.addSeries(after);
    JFreeChart perVisit = ChartFactory.createXYLineChart("Loss per block visit, before and after its search",
        "block visit", "loss", losses, PlotOrientation.VERTICAL, true, false, false);
    JFreeChart converge = ChartFactory.createXYLineChart("Best loss by generation, one line a block visit",
        "generation", "best loss", curves, PlotOrientation.VERTICAL, false, false, false);
    for (JFreeChart c : List.of(perVisit, converge)) {
      ((NumberAxis) c.getXYPlot().getRangeAxis()).setAutoRangeIncludesZero(false);
      c.getXYPlot().setBackgroundPaint(Color.WHITE);
    }
    page.chart("Search convergence", "Held-out agreement " + format(search.heldOutBefore()) + " before, "
            + format(search.heldOutAfter()) + " after, on " + search.heldOutImages() + " held-out images; "
            + search.evaluations() + " candidates in " + String.format(java.util.Locale.ROOT, "%.1f",
            search.searchSeconds()) + " s.", perVisit)
        .chart("Convergence per block visit", "", converge)
        .table("Block visits", "", List.of("pass", "block", "loss before", "loss after", "accepted", "candidates"),
            rows);
  }

  private static String format(Double v) {
    return v == null ? "n/a" : String.format(java.util.Locale.ROOT, "%.4f", v);
  }

  /**
   * The share of {@code images} (a seeded sample of {@value Sensitivity#IMAGES}) whose top-1 class, run through the
   * bundle's device then cloud model, equals the float model's; for a bundle without a classifier, the mean cosine
   * similarity of each image's output with the float model's.
   */
  public static double bundleAgreement(Model floatModel, Path bundle, ImageDataset images,
      InferenceSession.Config config, long seed) throws VitqException {
    Bundle.Loaded b = Bundle.read(bundle);
    int same = 0;
    double cosines = 0;
    int n = 0;
    List<HostTensor> batches = new ArrayList<>();
    images.sample(Sensitivity.IMAGES, seed).forEachBatch(1, Progress.NONE,
        x -> batches.add(HostTensor.ofFloats(x.shape(), x.pixels())));
    try (InferenceSession f = InferenceSession.of(floatModel, config); Bundle.Pair pair = Bundle.Pair.open(b, config)) {
      String in = f.inputNames().get(0);
      String out = f.outputNames().get(0);
      for (HostTensor x : batches) {
        float[] ref = f.run(Map.of(in, x), List.of(out)).get(out).floats();
        float[] got = pair.decode(pair.encode(x)).floats();
        if (b.classifier()) {
          same += Evaluation.argmax(ref, 0, ref.length) == Evaluation.argmax(got, 0, got.length) ? 1 : 0;
        } else {
          cosines += Evaluation.cosine(ref, got);
        }
        n++;
      }
    }
    return n == 0 ? Double.NaN : b.classifier() ? (double) same / n : cosines / n;
  }
}
