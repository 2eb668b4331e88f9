package dev.vitq.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Bounded-memory collection: statistics gathered a few images per run equal those gathered a whole batch per run and
 * those of one run over every image, value for value, because the histogram's bins depend only on the values seen.
 */
class ActivationStatsTest {
  private static final int SIZE = 32;
  private static final int IMAGES = 11;

  @TempDir static Path dir;
  static ImageDataset images;

  @BeforeAll
  static void writeImages() throws Exception {
    Random r = new Random(3);
    for (int i = 0; i < IMAGES; i++) {
      BufferedImage img = new BufferedImage(SIZE, SIZE, BufferedImage.TYPE_INT_RGB);
      for (int y = 0; y < SIZE; y++) {
        for (int x = 0; x < SIZE; x++) {
          img.setRGB(x, y, r.nextInt(1 << 24));
        }
      }
      ImageIO.write(img, "png", dir.resolve("img" + i + ".png").toFile());
    }
    images = ImageDataset.open(dir, Preprocessing.imagenet(SIZE));
  }

  /** Every MatMul and Gemm input and every softmax output: the kinds of tensors calibration observes. */
  private static List<String> observed(Model m) {
    List<String> out = new ArrayList<>();
    for (Node n : m.graph().nodes()) {
      String t = n.is("MatMul") || n.is("Gemm") ? n.input(0) : n.is("Softmax") ? n.outputs().get(0) : null;
      if (t != null && !out.contains(t)) {
        out.add(t);
      }
    }
    return out;
  }

  private static Map<String, TensorStats> collect(Model m, List<String> tensors, int batch, long runBytes)
      throws Exception {
    return ActivationStats.collect(m, VitBuilder.INPUT, tensors, images, batch, runBytes,
        new InferenceSession.Config(2, true), Progress.NONE);
  }

  private static void assertSameStats(Map<String, TensorStats> expected, Map<String, TensorStats> actual, String how) {
    assertEquals(expected.keySet(), actual.keySet());
    for (String t : expected.keySet()) {
      TensorStats e = expected.get(t);
      TensorStats a = actual.get(t);
      String what = how + ", " + t;
      assertEquals(e.histogram().total(), a.histogram().total(), what);
      assertEquals(e.histogram().min(), a.histogram().min(), what);
      assertEquals(e.histogram().max(), a.histogram().max(), what);
      assertEquals(e.histogram().lo(), a.histogram().lo(), what);
      assertEquals(e.histogram().hi(), a.histogram().hi(), what);
      assertArrayEquals(e.histogram().counts(), a.histogram().counts(), what);
      assertArrayEquals(e.channelMin(), a.channelMin(), what);
      assertArrayEquals(e.channelMax(), a.channelMax(), what);
      assertArrayEquals(e.channelMeans(), a.channelMeans(), what);
    }
  }

  @ParameterizedTest
  @EnumSource(value = Spelling.class, names = {"TIMM_17", "DYNAMO_20"})
  void statisticsDoNotDependOnHowManyImagesARunHolds(Spelling spelling) throws Exception {
    // DYNAMO_20 flattens tokens into Gemm's rows, [batch * tokens, width]: the batch is not a leading axis of its own.
    Model m = VitBuilder.build(new VitConfig(SIZE, 8, 3, 32, 2, 2, 64, 5), spelling, 7);
    List<String> tensors = observed(m);
    assertTrue(tensors.size() >= 10, tensors.toString());

    // The reference: every image in one run, outputs copied out and folded as they come.
    Map<String, TensorStats> reference = new LinkedHashMap<>();
    tensors.forEach(t -> reference.put(t, new TensorStats(t)));
    try (InferenceSession s = InferenceSession.of(ActivationStats.exposing(m, tensors),
        new InferenceSession.Config(2, true))) {
      images.forEachBatch(IMAGES, Progress.NONE, b -> {
        Map<String, HostTensor> out = s.run(Map.of(VitBuilder.INPUT, HostTensor.ofFloats(b.shape(), b.pixels())),
            tensors);
        for (String t : tensors) {
          long[] shape = out.get(t).shape();
          reference.get(t).add(out.get(t).floats(), (int) shape[shape.length - 1]);
        }
      });
    }
    long perImage = 0;
    for (TensorStats t : reference.values()) {
      perImage += t.histogram().total() * Float.BYTES / IMAGES;
    }

    // Whole batches per run; one image per run; three per run inside batches of four (so runs of 3, 1, 3, 1, 2 with
    // the first image measured alone), which also changes the shapes the session's kept buffers serve.
    assertSameStats(reference, collect(m, tensors, IMAGES, Long.MAX_VALUE), "one run");
    assertSameStats(reference, collect(m, tensors, 4, 1), "one image per run");
    assertSameStats(reference, collect(m, tensors, 4, 3 * perImage), "three images per run");
  }
}
