package dev.vitq.models.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.Model;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.SharedData;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class RoundTripTest {
  private static final VitConfig SMALL = new VitConfig(32, 8, 3, 64, 3, 4, 128, 10);

  /** Reads, writes, reads and writes again: ORT agrees with the original and the two writes are identical. */
  private static void assertLossless(byte[] original, String name, int imageSize) throws Exception {
    Model first = OnnxReader.read(original, null, name);
    byte[] once = OnnxWriter.toBytes(first);
    Model second = OnnxReader.read(once, null, name);
    byte[] twice = OnnxWriter.toBytes(second);
    assertArrayEquals(once, twice, "a second round trip must give the same bytes");
    assertEquals(first, second, "the IR must survive a round trip");

    float[] x = OrtRunner.randomImages(3, imageSize, 11);
    long[] shape = {3, 3, imageSize, imageSize};
    String input = first.graph().inputs().get(0).name();
    float[] expected = OrtRunner.run(original, input, x, shape);
    float[] actual = OrtRunner.run(once, input, x, shape);
    assertTrue(OrtRunner.maxAbsDiff(expected, actual) <= 1e-5, "outputs differ after a round trip");
  }

  @Test
  void sharedModelRoundTripsToTheSameBytes() throws Exception {
    Path model = SharedData.vitTiny();
    byte[] original = Files.readAllBytes(model);
    assertLossless(original, "vit-tiny-cifar10.onnx", 32);
    assertArrayEquals(original, OnnxWriter.toBytes(OnnxReader.read(model)),
        "the PyTorch export is re-written byte for byte");
  }

  @ParameterizedTest
  @EnumSource(Spelling.class)
  void everySpellingRoundTrips(Spelling spelling) throws Exception {
    byte[] bytes = OnnxWriter.toBytes(VitBuilder.build(SMALL, spelling, 5));
    assertLossless(bytes, spelling.cliName(), 32);
  }

  @Test
  void builderIsDeterministic() throws Exception {
    byte[] a = OnnxWriter.toBytes(VitBuilder.build(SMALL, Spelling.TIMM_17, 9));
    byte[] b = OnnxWriter.toBytes(VitBuilder.build(SMALL, Spelling.TIMM_17, 9));
    byte[] c = OnnxWriter.toBytes(VitBuilder.build(SMALL, Spelling.TIMM_17, 10));
    assertArrayEquals(a, b);
    assertTrue(!java.util.Arrays.equals(a, c), "another seed gives other weights");
  }

  @Test
  void externalDataRoundTripsAndRunsInOrt(@TempDir Path dir) throws Exception {
    Model model = VitBuilder.build(SMALL, Spelling.HF_13, 3);
    Path file = dir.resolve("vit.onnx");
    OnnxWriter.write(model, file, OnnxWriter.Placement.EXTERNAL);
    assertTrue(Files.exists(dir.resolve("vit.onnx.data")));
    assertTrue(Files.size(file) < 100_000, "weights must live in the data file");
    Model back = OnnxReader.read(file);
    assertArrayEquals(OnnxWriter.toBytes(model), OnnxWriter.toBytes(back));

    float[] x = OrtRunner.randomImages(2, 32, 4);
    long[] shape = {2, 3, 32, 32};
    float[] embedded = OrtRunner.run(OnnxWriter.toBytes(model), "pixel_values", x, shape);
    ai.onnxruntime.OrtEnvironment env = ai.onnxruntime.OrtEnvironment.getEnvironment();
    try (var session = env.createSession(file.toString(), new ai.onnxruntime.OrtSession.SessionOptions());
        var t = ai.onnxruntime.OnnxTensor.createTensor(env, java.nio.FloatBuffer.wrap(x), shape);
        var r = session.run(java.util.Map.of("pixel_values", t))) {
      float[][] y = (float[][]) r.get(0).getValue();
      float[] flat = new float[embedded.length];
      for (int i = 0; i < y.length; i++) {
        System.arraycopy(y[i], 0, flat, i * y[i].length, y[i].length);
      }
      assertTrue(OrtRunner.maxAbsDiff(embedded, flat) <= 1e-5);
    }
  }

  @Test
  void failedWriteLeavesNothingBehind(@TempDir Path dir) throws Exception {
    Path blocker = dir.resolve("not-a-folder");
    Files.writeString(blocker, "x");
    Model model = VitBuilder.build(SMALL, Spelling.TIMM_17, 1);
    org.junit.jupiter.api.Assertions.assertThrows(dev.vitq.models.VitqException.class,
        () -> OnnxWriter.write(model, blocker.resolve("out.onnx")));
    try (var files = Files.list(dir)) {
      assertEquals(1, files.count(), "only the blocker remains");
    }
  }
}
