package dev.vitq.maven;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.api.report.Reports;
import dev.vitq.cli.Main;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;
import org.apache.maven.plugin.MojoFailureException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The goals configured as a pom would configure them, on a small built ViT and synthetic images. */
class GoalsTest {
  @TempDir static Path shared;
  static File model;
  static File images;

  @BeforeAll
  static void modelAndImages() throws Exception {
    Path m = shared.resolve("vit.onnx");
    int code = Main.commandLine().execute("models", "build", "--image-size", "32", "--patch", "8", "--width", "32",
        "--depth", "2", "--heads", "2", "--classes", "3", "--seed", "5", "-o", m.toString());
    assertEquals(0, code);
    model = m.toFile();
    Random rng = new Random(1);
    for (int c = 0; c < 3; c++) {
      Path sub = shared.resolve("images/class" + c);
      Files.createDirectories(sub);
      for (int i = 0; i < 6; i++) {
        BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 32; y++) {
          for (int x = 0; x < 32; x++) {
            img.setRGB(x, y, rng.nextInt(1 << 24));
          }
        }
        ImageIO.write(img, "png", sub.resolve(i + ".png").toFile());
      }
    }
    images = shared.resolve("images").toFile();
  }

  private static QuantizeMojo quantize(File out) {
    QuantizeMojo q = new QuantizeMojo();
    q.model = model;
    q.calib = images;
    q.output = out;
    q.scheme = "w8a8";
    q.method = "mse";
    q.search = "none";
    q.batch = 50;
    return q;
  }

  private static EvalMojo eval(File m, Double minTop1, Double minAgreement) {
    EvalMojo e = new EvalMojo();
    e.model = m;
    e.data = images;
    e.ref = model;
    e.batch = 50;
    e.minTop1 = minTop1;
    e.minAgreement = minAgreement;
    return e;
  }

  @Test
  void quantizeThenEvalPassesTheGateItMeetsAndFailsTheOneItMisses(@TempDir Path dir) throws Exception {
    File out = dir.resolve("target/vitq/model.onnx").toFile();
    quantize(out).execute();
    assertTrue(out.isFile());
    // The float model agrees with itself on every image: a gate at 1.0 passes.
    eval(model, null, 1.0).execute();
    eval(out, 0.0, 0.0).execute();
    // No model reaches top-1 above 1: the build fails, in one line naming the measure, the value and the minimum.
    MojoFailureException f = assertThrows(MojoFailureException.class, () -> eval(out, 1.01, null).execute());
    assertTrue(f.getMessage().startsWith("vitq quality gate: top-1 ") && f.getMessage().contains("minTop1 1.0100"),
        f.getMessage());
    assertEquals(1, f.getMessage().lines().count());
  }

  @Test
  void theSchemesWithoutCalibrationNeedNoImages(@TempDir Path dir) throws Exception {
    for (String scheme : java.util.List.of("w8-dynamic", "fp16")) {
      File out = dir.resolve(scheme + ".onnx").toFile();
      QuantizeMojo q = quantize(out);
      q.calib = null;
      q.scheme = scheme;
      q.execute();
      assertTrue(out.isFile(), scheme);
      eval(out, null, 0.9).execute();
    }
    QuantizeMojo calibrated = quantize(dir.resolve("w8a8.onnx").toFile());
    calibrated.calib = null;
    MojoFailureException f = assertThrows(MojoFailureException.class, calibrated::execute);
    assertTrue(f.getMessage().contains("needs calibration images"), f.getMessage());
  }

  @Test
  void theGateNamesWhicheverMinimumIsMissed() {
    Reports.Eval e = new Reports.Eval("q.onnx", 100, 0, 0.80, "fp.onnx", 0.95);
    assertNull(EvalMojo.gate(e, 0.80, 0.95, null));
    assertNull(EvalMojo.gate(e, null, null, null));
    assertTrue(EvalMojo.gate(e, 0.81, null, null).contains("top-1 0.8000 of q.onnx is below minTop1 0.8100"));
    assertTrue(EvalMojo.gate(e, null, 0.96, null)
        .contains("agreement 0.9500 of q.onnx with fp.onnx is below minAgreement"));
    // A gate on a measure the run could not take (unlabelled images) fails rather than passing silently.
    assertTrue(EvalMojo.gate(new Reports.Eval("q.onnx", 100, 0, null, null, null), 0.5, null, null).contains("n/a"));
    assertTrue(EvalMojo.gate(e, null, null, 0.99).contains("this one is a classifier"));
  }

  @Test
  void theCosineGateReadsAnEmbeddingModelsOutputs() {
    Reports.Eval e = new Reports.Eval("q.onnx", 100, 0, null, "fp.onnx", null,
        new Reports.EmbeddingMeasures(0.9991, 0.9950, 0.97, null));
    assertNull(EvalMojo.gate(e, null, null, 0.999));
    assertTrue(EvalMojo.gate(e, null, null, 0.9995)
        .contains("output cosine 0.9991 of q.onnx with fp.onnx is below minCosine 0.9995"));
  }

  @Test
  void exportWritesABundleTheEvalGoalRuns(@TempDir Path dir) throws Exception {
    ExportMojo x = new ExportMojo();
    x.model = model;
    x.calib = images;
    x.split = 1;
    x.scheme = "w8a8";
    x.method = "mse";
    x.cloudPrecision = "same";
    x.batch = 50;
    x.output = dir.resolve("bundle").toFile();
    x.execute();
    assertTrue(new File(x.output, "manifest.json").isFile());
    EvalMojo e = eval(null, 0.0, 0.5);
    e.bundle = x.output;
    e.execute();
  }

  @Test
  void quantizeTakesAnAccuracyBudgetOnHeldOutImages(@TempDir Path dir) throws Exception {
    Path val = dir.resolve("val");
    Files.createDirectories(val);
    Random rng = new Random(2);
    for (int i = 0; i < 8; i++) {
      BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
      for (int y = 0; y < 32; y++) {
        for (int x = 0; x < 32; x++) {
          img.setRGB(x, y, rng.nextInt(1 << 24));
        }
      }
      ImageIO.write(img, "png", val.resolve(i + ".png").toFile());
    }
    File out = dir.resolve("budget.onnx").toFile();
    QuantizeMojo q = quantize(out);
    q.scheme = "w4a4";
    q.maxDrop = 0.5;
    q.val = val.toFile();
    q.execute();
    assertTrue(out.isFile());
    // The held-out images must not be calibration's: one sentence, nothing written.
    File shared = dir.resolve("shared.onnx").toFile();
    QuantizeMojo same = quantize(shared);
    same.maxDrop = 0.5;
    same.val = images;
    MojoFailureException f = assertThrows(MojoFailureException.class, same::execute);
    assertTrue(f.getMessage().contains("shares 18 of its 18 images with --calib"), f.getMessage());
    assertTrue(!shared.exists());
  }

  @Test
  void badConfigurationFailsInOneSentence(@TempDir Path dir) throws Exception {
    QuantizeMojo q = quantize(dir.resolve("m.onnx").toFile());
    q.scheme = "w3a3";
    MojoFailureException f = assertThrows(MojoFailureException.class, q::execute);
    assertTrue(f.getMessage().startsWith("Unknown scheme 'w3a3'"), f.getMessage());
    QuantizeMojo missing = quantize(dir.resolve("m.onnx").toFile());
    missing.model = dir.resolve("absent.onnx").toFile();
    f = assertThrows(MojoFailureException.class, missing::execute);
    assertEquals(1, f.getMessage().lines().count(), f.getMessage());
    assertTrue(!Files.exists(dir.resolve("m.onnx")));
    QuantizeMojo tpu = quantize(dir.resolve("m.onnx").toFile());
    tpu.target = "tpu";
    f = assertThrows(MojoFailureException.class, tpu::execute);
    assertTrue(f.getMessage().startsWith("--target must be one of cpu, qdq"), f.getMessage());
    QuantizeMojo mean = quantize(dir.resolve("m.onnx").toFile());
    mean.mean = "0.5,0.5";
    f = assertThrows(MojoFailureException.class, mean::execute);
    assertTrue(f.getMessage().contains("<mean> takes three numbers"), f.getMessage());
    EvalMojo both = eval(model, null, null);
    both.bundle = dir.toFile();
    assertTrue(assertThrows(MojoFailureException.class, both::execute).getMessage().contains("one of them"));
    QuantizeMojo skipped = quantize(dir.resolve("skipped.onnx").toFile());
    skipped.skip = true;
    skipped.model = dir.resolve("absent.onnx").toFile();
    skipped.execute();
    assertTrue(!Files.exists(dir.resolve("skipped.onnx")));
  }

  private static CheckMojo check(String ep, Integer maxPartitions) {
    CheckMojo c = new CheckMojo();
    c.model = model;
    c.ep = ep;
    c.checkBatch = 1;
    c.maxPartitions = maxPartitions;
    return c;
  }

  @Test
  void checkFailsTheBuildWhenTheModelSplitsIntoMorePartitionsThanAllowed() throws Exception {
    // The built ViT has an erf GELU in each of its two blocks, which QNN lacks: three partitions.
    check("qnn", 3).execute();
    check("qnn", null).execute();
    MojoFailureException f = assertThrows(MojoFailureException.class, () -> check("qnn", 2).execute());
    assertTrue(f.getMessage().startsWith("vitq check gate: vit.onnx splits into 3 partitions on qnn, more than "
        + "maxPartitions 2; the CPU takes ai.onnx:Erf (2: operator not supported)"), f.getMessage());
    MojoFailureException unknown = assertThrows(MojoFailureException.class, () -> check("tpu", 1).execute());
    assertTrue(unknown.getMessage().startsWith("Unknown execution provider 'tpu'"), unknown.getMessage());
  }
}
