package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --report DIR}: one self-contained report.html for quantize, export and eval, checked in headless chromium. */
class ReportTest {
  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void modelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    images = CliFixtures.images(shared.resolve("images"), 32, 3, 8, 2);
  }

  private static int count(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  /** Nothing the page would fetch: no src or href attributes, no CSS url() or @import, no scripts. */
  private static void selfContained(String html) {
    assertEquals(0, count(html, "(?i)\\s(src|href|xlink:href)\\s*=\\s*\"(?!#)"), "a link or source in the page");
    assertFalse(html.contains("url(http") || html.contains("@import") || html.contains("<script"), html);
  }

  @Test
  void quantizeReportHasSettingsSensitivityAndConvergence(@TempDir Path dir) throws Exception {
    Path report = dir.resolve("report");
    CliRun q = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--scheme", "w4a8", "--search",
        "evolq", "--population", "4", "--generations", "2", "--search-batch", "12", "--validation", "6",
        "--held-out", "6", "--report", report.toString(), "-o", dir.resolve("q.onnx").toString(), "-q");
    assertEquals(0, q.exitCode(), q.err());
    String html = Files.readString(report.resolve("report.html"));
    selfContained(html);
    for (String heading : List.of("Settings", "Per-block sensitivity", "Sensitivity chart", "Search convergence",
        "Block visits")) {
      assertTrue(html.contains("<h2>" + heading + "</h2>"), heading);
    }
    // One sensitivity row per part and one for the whole plan.
    for (String part : List.of("embedding", "block 1", "block 2", "head", "all")) {
      assertTrue(html.contains("<tr><td>" + part + "</td>"), part);
    }
    assertEquals(3, count(html, "<svg"), "sensitivity, loss per visit, convergence, and nothing else");
    assertFalse(html.contains("Pareto"), "no Pareto section without candidates");
    // The search's files are still written beside it.
    assertTrue(Files.isRegularFile(report.resolve("report.json")));
    assertTrue(rendersCharts(report.resolve("report.html"), 3, dir));
  }

  @Test
  void exportAndEvalReports(@TempDir Path dir) throws Exception {
    CliRun x = CliRun.of("export", model.toString(), "--calib", images.toString(), "--split", "1", "--keep-tokens",
        "0.5", "--report", dir.resolve("x").toString(), "-o", dir.resolve("bundle").toString(), "-q");
    assertEquals(0, x.exitCode(), x.err());
    String exported = Files.readString(dir.resolve("x/report.html"));
    selfContained(exported);
    assertTrue(exported.contains("<h2>Split: bytes against accuracy</h2>"));
    assertTrue(exported.contains("<td>9 of 17</td>"), "class token and 8 of 16 patch tokens");
    assertTrue(exported.contains("<h2>Per-block sensitivity</h2>"));
    CliRun e = CliRun.of("eval", "--bundle", dir.resolve("bundle").toString(), "--data", images.toString(), "--ref",
        model.toString(), "--report", dir.resolve("e").toString(), "-q");
    assertEquals(0, e.exitCode(), e.err());
    String evaluated = Files.readString(dir.resolve("e/report.html"));
    selfContained(evaluated);
    assertEquals(1, count(evaluated, "<svg"));
    assertTrue(rendersCharts(dir.resolve("e/report.html"), 1, dir));
  }

  @Test
  void anUnwritableReportFolderIsOneSentenceAndNoModel(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("taken"), "x");
    CliRun e = CliRun.of("eval", model.toString(), "--data", images.toString(), "--report",
        file.resolve("sub").toString(), "-q");
    assertEquals(1, e.exitCode());
    assertTrue(e.err().startsWith("vitq: Cannot create the report folder"), e.err());
  }

  @Test
  void aModelThatIsNotAViTGetsTheWholePlanMeasuredNotBlocks(@TempDir Path dir) throws Exception {
    // Sigmoid attention: recognition finds no softmax, so the model is quantized generically, without blocks.
    dev.vitq.models.Model m = dev.vitq.models.onnx.OnnxReader.read(model);
    List<dev.vitq.models.Node> nodes = m.graph().nodes().stream().map(n -> n.is("Softmax") ? new dev.vitq.models.Node(
        n.name(), "Sigmoid", "", n.inputs(), n.outputs(), List.of(), n.extras()) : n).toList();
    Path generic = dir.resolve("generic.onnx");
    dev.vitq.models.onnx.OnnxWriter.write(m.withGraph(m.graph().withNodes(nodes)), generic);
    CliRun q = CliRun.of("quantize", generic.toString(), "--calib", images.toString(), "--report",
        dir.resolve("r").toString(), "-o", dir.resolve("q.onnx").toString(), "-q");
    assertEquals(0, q.exitCode(), q.err());
    String html = Files.readString(dir.resolve("r/report.html"));
    assertTrue(html.contains("<tr><td>all</td>"), html);
    assertEquals(0, count(html, "<tr><td>(block \\d+|embedding|head)</td>"), "no parts without blocks");
    assertTrue(html.contains("<td>no: generic.onnx is not a transformer encoder"), "the settings say why");
  }

  /** The chromium on PATH, or null. */
  private static String chromium() {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
      for (String name : List.of("chromium", "chromium-browser")) {
        if (Files.isExecutable(Path.of(dir, name))) {
          return Path.of(dir, name).toString();
        }
      }
    }
    return null;
  }

  /**
   * Renders the page in headless chromium: its DOM must hold {@code charts} SVG elements with their text, and its
   * screenshot the charts' coloured bars and lines (JFreeChart's first series is red). Skips without chromium.
   */
  private static boolean rendersCharts(Path page, int charts, Path dir) throws Exception {
    String chromium = chromium();
    Assumptions.assumeTrue(chromium != null, "chromium is not installed (apt-get install chromium); the report's "
        + "browser check is skipped");
    Path profile = Files.createTempDirectory(dir, "chromium-profile");
    List<String> common = new ArrayList<>(List.of(chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        "--user-data-dir=" + profile));
    List<String> dump = new ArrayList<>(common);
    dump.addAll(List.of("--dump-dom", page.toUri().toString()));
    String dom = run(dump, dir.resolve("dom.html"));
    assertEquals(charts, count(dom, "<svg"), "charts in the rendered DOM");
    assertTrue(dom.contains("<text") && dom.contains("</svg>"), "the charts' text was parsed as SVG");
    Path shot = dir.resolve("shot.png");
    List<String> screenshot = new ArrayList<>(common);
    screenshot.addAll(List.of("--hide-scrollbars", "--window-size=1100,6000", "--screenshot=" + shot,
        page.toUri().toString()));
    run(screenshot, dir.resolve("shot.log"));
    BufferedImage img = ImageIO.read(shot.toFile());
    int coloured = 0;
    for (int y = 0; y < img.getHeight(); y += 2) {
      for (int x = 0; x < img.getWidth(); x += 2) {
        int rgb = img.getRGB(x, y);
        int r = rgb >> 16 & 0xff;
        int g = rgb >> 8 & 0xff;
        int b = rgb & 0xff;
        if (r > 180 && g < 120 && b < 120) {
          coloured++;
        }
      }
    }
    assertTrue(coloured > 50, "the screenshot shows no chart colour (" + coloured + " red pixels sampled)");
    return true;
  }

  private static String run(List<String> command, Path output) throws Exception {
    Process p = new ProcessBuilder(command).redirectOutput(output.toFile())
        .redirectError(output.resolveSibling(output.getFileName() + ".err").toFile()).start();
    if (!p.waitFor(90, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("chromium did not finish within 90 s: " + command);
    }
    assertEquals(0, p.exitValue(), Files.readString(output.resolveSibling(output.getFileName() + ".err")));
    return Files.readString(output);
  }
}
