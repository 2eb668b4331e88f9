package dev.vitq.api.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HtmlReportTest {
  private static final ParetoPoint A = new ParetoPoint("w8a8", 5_700_000, 3.1, 0.98);
  private static final ParetoPoint B = new ParetoPoint("w4a8", 3_100_000, 3.2, 0.96);
  private static final ParetoPoint C = new ParetoPoint("w6a6", 5_800_000, 4.3, 0.92);
  private static final ParetoPoint D = new ParetoPoint("mixed", 4_000_000, 3.0, 0.97);

  @Test
  void theFrontKeepsWhatNothingBeatsOnEveryMeasure() {
    // C is beaten by A on all three; A, B and D each win on something.
    assertEquals(List.of(A, B, D), HtmlReport.front(List.of(A, B, C, D)));
    assertEquals(List.of(A), HtmlReport.front(List.of(A)));
  }

  private static HtmlReport page() {
    return new HtmlReport("t <&> \"q\"").settings("Settings", Map.of("k", "<b>")).pareto(List.of(A, B, C, D));
  }

  @Test
  void aParetoSectionIsATableAndAChartInOneDeterministicFile(@TempDir Path dir) throws Exception {
    String html = Files.readString(page().write(dir));
    assertTrue(html.contains("<h2>Pareto front</h2>"));
    assertTrue(html.contains("<tr><td>mixed</td><td class=\"n\">4000000</td><td class=\"n\">3.0000</td>"
        + "<td class=\"n\">0.9700</td><td>yes</td></tr>"), html);
    assertTrue(html.contains("<tr><td>w6a6</td><td class=\"n\">5800000</td><td class=\"n\">4.3000</td>"
        + "<td class=\"n\">0.9200</td><td></td></tr>"));
    assertTrue(html.contains("&lt;b&gt;") && html.contains("t &lt;&amp;&gt; &quot;q&quot;"), "text is escaped");
    assertEquals(1, html.split("<svg", -1).length - 1);
    assertEquals(html, Files.readString(page().write(dir.resolve("again"))), "the same content, the same bytes");
    assertTrue(!new HtmlReport("empty").pareto(List.of()).html().contains("Pareto"));
  }
}
