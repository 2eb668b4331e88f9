package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtException;
import dev.vitq.models.VitqException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine.Model.CommandSpec;

/** Running out of memory, Java's or ONNX Runtime's, is one sentence naming what helps and exit code 1. */
class OutOfMemoryCliTest {
  /**
   * Preprocessing to 46000x46000 pixels: resizing one image then needs an int[2.1 billion], 8.5 GB, more than the
   * tests' heap, so the allocation fails at once instead of filling memory first.
   */
  private static final String[] HUGE = {"--size", "46000", "--resize", "46000"};

  @TempDir static Path shared;
  static Path model;
  static Path images;

  @BeforeAll
  static void buildModelAndImages() throws Exception {
    model = CliFixtures.model(shared, 1);
    images = CliFixtures.images(shared.resolve("images"), 32, 1, 2, 3);
  }

  private static void assertOneSentenceAboutMemory(CliRun r, boolean batch) {
    assertEquals(1, r.exitCode(), r.err());
    List<String> lines = r.err().lines().toList();
    assertEquals(1, lines.size(), r.err());
    assertTrue(lines.get(0).startsWith("vitq: Java ran out of memory (Java heap space); "), r.err());
    assertEquals(batch, lines.get(0).contains("pass a smaller --batch"), r.err());
    assertTrue(lines.get(0).matches(".*give it more with VITQ_JAVA_OPTS=-Xmx\\d+g \\(it may use [\\d.]+ GiB now\\)\\."),
        r.err());
  }

  @Test
  void javaRunningOutOfMemoryIsOneSentence() {
    CliRun r = CliRun.of(Stream.concat(Stream.of("eval", model.toString(), "--data", images.toString(), "-q"),
        Stream.of(HUGE)).toArray(String[]::new));
    assertOneSentenceAboutMemory(r, true);
  }

  @Test
  void quantizeRunningOutOfMemoryWritesNothing(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("q.onnx");
    CliRun r = CliRun.of(Stream.concat(Stream.of("quantize", model.toString(), "--calib", images.toString(), "-o",
        out.toString(), "--plan-out", dir.resolve("plan.json").toString(), "-q"), Stream.of(HUGE))
        .toArray(String[]::new));
    assertOneSentenceAboutMemory(r, true);
    try (Stream<Path> left = Files.list(dir)) {
      assertEquals(List.of(), left.toList(), "no output, plan or temporary file");
    }
  }

  private static CommandSpec command(String name) {
    return Main.commandLine().getSubcommands().get(name).getCommandSpec();
  }

  @Test
  void onnxRuntimeRunningOutOfMemoryNamesTheOptionThatHelps() {
    VitqException e = new VitqException("ONNX Runtime ran out of memory to run the model (it asked for 1,024 bytes).",
        new OrtException("Non-zero status code returned while running MatMul node. Status Message: "
            + "Failed to allocate memory for requested buffer of size 1024"));
    assertEquals("ONNX Runtime ran out of memory to run the model (it asked for 1,024 bytes); pass a smaller "
        + "--batch, or free memory.", Main.outOfMemory(e, command("quantize")));
    assertEquals("ONNX Runtime ran out of memory to run the model (it asked for 1,024 bytes); free memory for it.",
        Main.outOfMemory(e, command("export")));
    String java = Main.outOfMemory(new IllegalStateException("wrapped", new OutOfMemoryError("Java heap space")),
        command("convert"));
    assertTrue(java.startsWith("Java ran out of memory (Java heap space); give it more with VITQ_JAVA_OPTS=-Xmx"),
        java);
    assertFalse(java.contains("--batch"), java);
    assertNull(Main.outOfMemory(new VitqException("Image folder x does not exist or is not a folder."),
        command("quantize")));
    assertNull(Main.outOfMemory(new VitqException("ONNX Runtime failed to run the model: bad shape.",
        new OrtException("Invalid rank for input")), command("eval")));
  }
}
