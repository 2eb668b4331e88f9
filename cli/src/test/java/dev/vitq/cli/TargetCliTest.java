package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.Model;
import dev.vitq.models.onnx.OnnxReader;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --target} on the command line: what it writes, and the sentences for what a target cannot run. */
class TargetCliTest {
  @Test
  void qdqWritesNoContribOperatorAndCpuStaysTheDefault(@TempDir Path dir) throws Exception {
    Path model = CliFixtures.model(dir, 1);
    Path images = CliFixtures.images(dir.resolve("images"), 32, 3, 4, 3);
    for (String target : new String[] {"cpu", "qdq"}) {
      CliRun r = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--target", target, "--seed",
          "1", "-o", dir.resolve(target + ".onnx").toString(), "-q");
      assertEquals(0, r.exitCode(), r.err());
    }
    CliRun r = CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--seed", "1", "-o",
        dir.resolve("default.onnx").toString(), "-q");
    assertEquals(0, r.exitCode(), r.err());

    Model cpu = OnnxReader.read(dir.resolve("cpu.onnx"));
    Model qdq = OnnxReader.read(dir.resolve("qdq.onnx"));
    assertEquals(cpu, OnnxReader.read(dir.resolve("default.onnx")), "cpu is the default");
    assertTrue(cpu.graph().nodes().stream().anyMatch(n -> n.domain().equals("com.microsoft")));
    assertFalse(qdq.graph().nodes().stream().anyMatch(n -> !n.domain().isEmpty()));
    assertEquals(0, qdq.opset("com.microsoft"));
  }

  @Test
  void anUnknownTargetAndSixteenBitsOnNnapiAreOneSentence(@TempDir Path dir) throws Exception {
    Path model = CliFixtures.model(dir, 1);
    Path images = CliFixtures.images(dir.resolve("images"), 32, 3, 2, 3);
    Path out = dir.resolve("q.onnx");
    CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--target", "tpu", "-o", out.toString())
        .assertUserError("--target must be one of cpu, qdq, qnn, nnapi, coreml, xnnpack", out);
    CliRun.of("quantize", model.toString(), "--calib", images.toString(), "--target", "nnapi", "--scheme", "w8a16",
        "-o", out.toString(), "-q").assertUserError("--target nnapi runs activations of at most 8 bits", out);
  }
}
