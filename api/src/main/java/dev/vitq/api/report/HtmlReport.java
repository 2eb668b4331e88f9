package dev.vitq.api.report;

import dev.vitq.converter.Provenance;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.VitqException;
import java.awt.Color;
import java.awt.Rectangle;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/**
 * One self-contained {@code report.html}: sections of settings, tables and charts, the charts drawn by JFreeChart
 * into inline SVG (JFreeSVG), with no scripts, fonts, styles or images fetched from anywhere, so the file opens
 * offline and can be attached to a build.
 *
 * {@snippet lang="java" :
 * HtmlReport r = new HtmlReport("vitq quantize: vit.onnx")
 *     .settings("Settings", Map.of("scheme", "w8a8"))
 *     .table("Result", "", List.of("model", "bytes"), List.of(List.of("q.onnx", 5_761_937L)))
 *     .pareto(List.of(new ParetoPoint("w8a8", 5_761_937L, 3.1, 0.98)));
 * r.write(Path.of("report/"));
 * }
 */
final class HtmlReport {
  /** A file name every command writes its report under. */
  static final String FILE = "report.html";
  private static final int CHART_WIDTH = 880;
  private static final int CHART_HEIGHT = 340;


  private final String title;
  private final List<String> sections = new ArrayList<>();
  private int charts;

  HtmlReport(String title) {
    this.title = title;
  }

  /** A two-column table of settings, in the map's order. */
  HtmlReport settings(String heading, Map<String, ?> values) {
    List<List<?>> rows = new ArrayList<>();
    values.forEach((k, v) -> rows.add(List.of(k, v == null ? "" : v)));
    return table(heading, "", List.of("setting", "value"), rows);
  }

  /** A table; numbers are printed to four decimals (integers as they are). */
  HtmlReport table(String heading, String note, List<String> columns, List<? extends List<?>> rows) {
    StringBuilder s = new StringBuilder();
    s.append("<section>\n<h2>").append(escape(heading)).append("</h2>\n");
    if (!note.isEmpty()) {
      s.append("<p>").append(escape(note)).append("</p>\n");
    }
    s.append("<table>\n<thead><tr>");
    for (String c : columns) {
      s.append("<th>").append(escape(c)).append("</th>");
    }
    s.append("</tr></thead>\n<tbody>\n");
    for (List<?> row : rows) {
      s.append("<tr>");
      for (Object cell : row) {
        s.append(cell instanceof Number ? "<td class=\"n\">" : "<td>").append(escape(format(cell))).append("</td>");
      }
      s.append("</tr>\n");
    }
    s.append("</tbody>\n</table>\n</section>\n");
    sections.add(s.toString());
    return this;
  }

  /** A chart, drawn as inline SVG. */
  HtmlReport chart(String heading, String note, JFreeChart chart) {
    chart.setBackgroundPaint(Color.WHITE);
    SVGGraphics2D g = new SVGGraphics2D(CHART_WIDTH, CHART_HEIGHT);
    // A fixed prefix for clip-path ids, unique within the page: JFreeSVG's default includes the clock.
    g.setDefsKeyPrefix("c" + charts);
    chart.draw(g, new Rectangle(0, 0, CHART_WIDTH, CHART_HEIGHT));
    String svg = g.getSVGElement("chart" + charts);
    charts++;
    StringBuilder s = new StringBuilder();
    s.append("<section>\n<h2>").append(escape(heading)).append("</h2>\n");
    if (!note.isEmpty()) {
      s.append("<p>").append(escape(note)).append("</p>\n");
    }
    s.append("<figure class=\"chart\">").append(svg).append("</figure>\n</section>\n");
    sections.add(s.toString());
    return this;
  }

  /**
   * The Pareto front of a mixed-precision search: every candidate in a table (those no other candidate beats on
   * bytes, latency and agreement at once marked), and bytes against agreement as a chart, the front joined up.
   * Nothing is added for an empty list.
   */
  HtmlReport pareto(List<ParetoPoint> points) {
    if (points.isEmpty()) {
      return this;
    }
    List<ParetoPoint> front = front(points);
    List<List<?>> rows = new ArrayList<>();
    for (ParetoPoint p : points) {
      rows.add(List.of(p.name(), p.bytes(), Double.isNaN(p.latencyMillis()) ? "" : p.latencyMillis(), p.agreement(),
          front.contains(p) ? "yes" : ""));
    }
    table("Pareto front", "Every candidate the search measured; 'on front' marks those no other candidate beats on "
        + "bytes, latency and agreement at once.", List.of("candidate", "bytes", "latency ms", "agreement",
        "on front"), rows);
    XYSeries all = new XYSeries("candidates");
    XYSeries line = new XYSeries("front (bytes vs agreement)");
    points.forEach(p -> all.add(p.bytes(), p.agreement()));
    front.stream().sorted(Comparator.comparingLong(ParetoPoint::bytes)).forEach(p -> line.add(p.bytes(),
        p.agreement()));
    XYSeriesCollection data = new XYSeriesCollection();
    data.addSeries(all);
    data.addSeries(line);
    JFreeChart c = ChartFactory.createXYLineChart("Bytes against agreement", "bytes", "agreement with float",
        data, PlotOrientation.VERTICAL, true, false, false);
    XYPlot plot = c.getXYPlot();
    XYLineAndShapeRenderer r = new XYLineAndShapeRenderer();
    r.setSeriesLinesVisible(0, false);
    r.setSeriesShapesVisible(0, true);
    r.setSeriesShapesVisible(1, true);
    plot.setRenderer(r);
    plot.setBackgroundPaint(Color.WHITE);
    ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
    ((NumberAxis) plot.getDomainAxis()).setAutoRangeIncludesZero(false);
    return chart("Pareto front: bytes against agreement", "", c);
  }

  /** The points no other point dominates (fewer or equal bytes and latency, higher or equal agreement, one better). */
  static List<ParetoPoint> front(List<ParetoPoint> points) {
    List<ParetoPoint> out = new ArrayList<>();
    for (ParetoPoint p : points) {
      boolean dominated = false;
      for (ParetoPoint q : points) {
        if (q != p && dominates(q, p)) {
          dominated = true;
          break;
        }
      }
      if (!dominated) {
        out.add(p);
      }
    }
    return out;
  }

  private static boolean dominates(ParetoPoint a, ParetoPoint b) {
    double la = Double.isNaN(a.latencyMillis()) ? 0 : a.latencyMillis();
    double lb = Double.isNaN(b.latencyMillis()) ? 0 : b.latencyMillis();
    boolean noWorse = a.bytes() <= b.bytes() && la <= lb && a.agreement() >= b.agreement();
    boolean better = a.bytes() < b.bytes() || la < lb || a.agreement() > b.agreement();
    return noWorse && better;
  }

  /** The whole page. */
  String html() {
    StringBuilder s = new StringBuilder();
    s.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").append(escape(title))
        .append("</title>\n<style>\n")
        .append("body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}\n")
        .append("table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.2em .6em;"
            + "text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\n")
        .append("th{background:#f3f3f3}figure.chart{margin:.5em 0}figure.chart svg{max-width:100%;height:auto}\n")
        .append("</style>\n</head>\n<body>\n<h1>").append(escape(title)).append("</h1>\n")
        .append("<p>Written by vitq ").append(escape(Provenance.version())).append(".</p>\n");
    sections.forEach(s::append);
    s.append("</body>\n</html>\n");
    return s.toString();
  }

  /**
   * Writes {@value #FILE} into {@code dir}, creating it; the file appears complete or not at all.
   *
   * @throws VitqException if the folder or the file cannot be written
   */
  Path write(Path dir) throws VitqException {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new VitqException("Cannot create the report folder " + dir + ": " + e.getMessage() + ".", e);
    }
    Path file = dir.resolve(FILE);
    AtomicFile.write(file, html().getBytes(StandardCharsets.UTF_8));
    return file;
  }

  private static String format(Object cell) {
    if (cell instanceof Double d || cell instanceof Float) {
      double v = ((Number) cell).doubleValue();
      return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.4f", v);
    }
    return String.valueOf(cell);
  }

  static String escape(String text) {
    StringBuilder s = new StringBuilder(text.length());
    for (char c : text.toCharArray()) {
      switch (c) {
        case '<' -> s.append("&lt;");
        case '>' -> s.append("&gt;");
        case '&' -> s.append("&amp;");
        case '"' -> s.append("&quot;");
        default -> s.append(c);
      }
    }
    return s.toString();
  }
}
