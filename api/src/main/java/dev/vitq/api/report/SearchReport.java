package dev.vitq.api.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.search.BlockResult;
import dev.vitq.quantizer.search.EvolQ;
import dev.vitq.quantizer.search.SearchSettings;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The report of an evolq search: {@code report.json} (settings, every block visit, held-out agreement, cost) and
 * {@code report.png} (loss per block visit before and after, convergence per generation, held-out agreement).
 */
public final class SearchReport {
  private static final ObjectMapper JSON = new ObjectMapper()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(SerializationFeature.INDENT_OUTPUT);
  private static final int WIDTH = 900;
  private static final int HEIGHT = 360;

  private SearchReport() {}

  /** The summary the quantize report carries. */
  public static Reports.Search summary(EvolQ.Result r, SearchSettings settings, Path dir) {
    List<BlockResult> b = r.blocks();
    return new Reports.Search(settings.strategy().cliName(), settings.objective().cliName(),
        settings.genes().cliName(), settings.inputs().cliName(), b.size(),
        (int) b.stream().filter(BlockResult::accepted).count(), b.isEmpty() ? Double.NaN : b.get(0).lossBefore(),
        b.isEmpty() ? Double.NaN : b.get(b.size() - 1).lossAfter(), r.heldOutBefore(), r.heldOutAfter(),
        r.searchImages(), r.heldOutImages(), r.evaluations(), r.searchSeconds(), r.fp32PassSeconds(), r.costRatio(),
        r.resumedAtStep(), dir == null ? null : dir.toString());
  }

  /**
   * Writes the report into {@code dir}, creating it.
   *
   * @throws VitqException if the folder or a file cannot be written
   */
  public static void write(Path dir, EvolQ.Result r, SearchSettings settings) throws VitqException {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new VitqException("Cannot create the report folder " + dir + ": " + e.getMessage() + ".", e);
    }
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("format", "vitq-evolq-report/1");
    json.put("settings", settings);
    json.put("summary", summary(r, settings, dir));
    json.put("blocks", r.blocks());
    try {
      AtomicFile.write(dir.resolve("report.json"), (JSON.writeValueAsString(json) + "\n")
          .getBytes(StandardCharsets.UTF_8));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("A search report always serialises", e);
    }
    BufferedImage picture = picture(r);
    AtomicFile.write(dir.resolve("report.png"), out -> ImageIO.write(picture, "png", out));
  }

  /** Three charts stacked: loss per block visit, convergence, held-out agreement. */
  static BufferedImage picture(EvolQ.Result r) {
    XYSeries before = new XYSeries("before");
    XYSeries after = new XYSeries("after");
    XYSeriesCollection convergence = new XYSeriesCollection();
    int step = 0;
    for (BlockResult b : r.blocks()) {
      before.add(step, b.lossBefore());
      after.add(step, b.lossAfter());
      XYSeries curve = new XYSeries("pass " + (b.pass() + 1) + " block " + (b.block() + 1));
      for (int g = 0; g < b.bestPerGeneration().size(); g++) {
        curve.add(g + 1, b.bestPerGeneration().get(g));
      }
      convergence.addSeries(curve);
      step++;
    }
    XYSeriesCollection losses = new XYSeriesCollection();
    losses.addSeries(before);
    losses.addSeries(after);
    JFreeChart perBlock = ChartFactory.createXYLineChart("Loss per block visit, before and after its search",
        "block visit (pass-major; see report.json for the block)", "loss", losses, PlotOrientation.VERTICAL, true,
        false, false);
    JFreeChart converge = ChartFactory.createXYLineChart("Convergence: best loss by generation, one line a visit",
        "generation", "best loss", convergence, PlotOrientation.VERTICAL, false, false, false);
    DefaultCategoryDataset agreement = new DefaultCategoryDataset();
    if (r.heldOutBefore() != null) {
      agreement.addValue(r.heldOutBefore(), "agreement", "before (" + r.heldOutImages() + " held-out images)");
      agreement.addValue(r.heldOutAfter(), "agreement", "after");
    }
    JFreeChart held = ChartFactory.createBarChart("Top-1 agreement with the float model on held-out images", "",
        "agreement", agreement, PlotOrientation.VERTICAL, false, false, false);
    // The changes are small next to the losses themselves: axes span the data, not zero to it.
    for (JFreeChart c : List.of(perBlock, converge)) {
      ((NumberAxis) c.getXYPlot().getRangeAxis()).setAutoRangeIncludesZero(false);
      c.getXYPlot().setBackgroundPaint(Color.WHITE);
    }
    if (r.heldOutBefore() != null) {
      double lo = Math.min(r.heldOutBefore(), r.heldOutAfter());
      held.getCategoryPlot().getRangeAxis().setRange(Math.max(0, lo - 0.02), 1.0);
    }
    held.getCategoryPlot().setBackgroundPaint(Color.WHITE);
    BufferedImage out = new BufferedImage(WIDTH, 3 * HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = out.createGraphics();
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, WIDTH, 3 * HEIGHT);
    g.drawImage(perBlock.createBufferedImage(WIDTH, HEIGHT), 0, 0, null);
    g.drawImage(converge.createBufferedImage(WIDTH, HEIGHT), 0, HEIGHT, null);
    g.drawImage(held.createBufferedImage(WIDTH, HEIGHT), 0, 2 * HEIGHT, null);
    g.dispose();
    return out;
  }
}
