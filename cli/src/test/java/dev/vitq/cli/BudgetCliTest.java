package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BudgetCliTest {
  @TempDir static Path shared;
  static Path model;
  static Path calib;
  static Path val;
  static Path flat;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 2);
    calib = CliFixtures.images(shared.resolve("calib"), 32, 3, 8, 1);
    val = CliFixtures.images(shared.resolve("val"), 32, 3, 16, 2);
    flat = CliFixtures.images(shared.resolve("flat"), 32, 1, 48, 3).resolve("class0");
  }

  private static CliRun quantize(Path out, String... extra) {
    List<String> args = new ArrayList<>(List.of("quantize", model.toString(), "--calib", calib.toString(),
        "-o", out.toString(), "-q"));
    args.addAll(List.of(extra));
    return CliRun.of(args.toArray(String[]::new));
  }

  @Test
  void explore(@TempDir Path dir) throws Exception {
    for (String d : new String[] {"0.2", "0.05", "0"}) {
      CliRun r = quantize(dir.resolve("q.onnx"), "--scheme", "w4a4", "--max-drop", d, "--val", flat.toString());
      System.out.println("EXPLORE " + d + " " + r.exitCode() + "\n" + r.out() + r.err());
      r = quantize(dir.resolve("q.onnx"), "--scheme", "w4a4", "--max-drop", d, "--val", val.toString());
      System.out.println("EXPLORE labelled " + d + " " + r.exitCode() + "\n" + r.out() + r.err());
    }
    assertEquals(0, 0);
  }
}
