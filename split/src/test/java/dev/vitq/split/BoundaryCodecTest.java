package dev.vitq.split;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Dim;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The boundary codec: its bit packing byte for byte, its graphs against its Java twin, and what PCA buys. */
class BoundaryCodecTest {
  private static final InferenceSession.Config ONE = new InferenceSession.Config(1, true);

  /** A model around one builder: input {@code in} of {@code type}, output {@code out}. */
  private static Model model(GraphBuilder b, Value in, String out) {
    List<Node> nodes = new java.util.ArrayList<>(b.nodes());
    nodes.add(new Node("out", "Identity", "", List.of(out), List.of("y"), List.of(), Blob.EMPTY));
    Graph g = new Graph("g", nodes, List.of(in), List.of(Value.of("y", null)), b.initializers(), List.of(),
        Blob.EMPTY);
    return new Model(8, List.of(new OpsetId("", 17)), "test", "", "", 0, "", List.of(), g, Blob.EMPTY);
  }

  private static byte[] encode(BoundaryCodec codec, float[] x, int tokens) throws Exception {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    Value in = Value.of("x", new TensorType(DType.FLOAT, List.of(Dim.of(1), Dim.of(tokens), Dim.of(codec.width()))));
    try (InferenceSession s = InferenceSession.of(model(b, in, codec.encode(b, "x")), ONE)) {
      HostTensor out = s.run(Map.of("x", HostTensor.ofFloats(new long[] {1, tokens, codec.width()}, x)),
          List.of("y")).get("y");
      assertEquals(DType.UINT8, out.dtype());
      assertArrayEquals(new long[] {1, tokens, codec.bytesPerToken()}, out.shape());
      return out.bytes();
    }
  }

  private static float[] decode(BoundaryCodec codec, byte[] codes, int tokens) throws Exception {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("q");
    Value in = Value.of("q", new TensorType(DType.UINT8, List.of(Dim.of(1), Dim.of(tokens),
        Dim.of(codec.bytesPerToken()))));
    ByteBuffer buf = ByteBuffer.allocateDirect(codes.length).put(codes).flip();
    try (InferenceSession s = InferenceSession.of(model(b, in, codec.decode(b, "q")), ONE)) {
      return s.run(Map.of("q", new HostTensor(DType.UINT8, new long[] {1, tokens, codec.bytesPerToken()}, buf)),
          List.of("y")).get("y").floats();
    }
  }

  private static BoundaryCodec unitCodes(int width, int bits) {
    float[] ones = new float[width];
    java.util.Arrays.fill(ones, 1f);
    return new BoundaryCodec(width, width, bits, new float[width], null, ones, new float[width]);
  }

  @Test
  void codesArePackedMostSignificantBitFirstAsTheManifestSays() throws Exception {
    float[] x = {1, 2, 3, 4, 63, 0, 17, 40};
    // 6 bits: 1, 2, 3, 4 -> 000001 000010 000011 000100 -> 0x04 0x20 0xC4.
    byte[] six = encode(unitCodes(8, 6), x, 1);
    assertArrayEquals(new byte[] {0x04, 0x20, (byte) 0xC4, (byte) 0xFC, 0x04, 0x68}, six);
    assertArrayEquals(x, decode(unitCodes(8, 6), six, 1));
    float[] small = {1, 2, 3, 4, 15, 0, 9, 10};
    byte[] four = encode(unitCodes(8, 4), small, 1);
    assertArrayEquals(new byte[] {0x12, 0x34, (byte) 0xF0, (byte) 0x9A}, four);
    assertArrayEquals(small, decode(unitCodes(8, 4), four, 1));
    float[] clipped = {-3, 300, 2.5f, 3.5f, 0, 0, 0, 0};
    assertArrayEquals(new byte[] {0, (byte) 255, 2, 4, 0, 0, 0, 0}, encode(unitCodes(8, 8), clipped, 1),
        "codes are clipped to the range and rounded half to even");
  }

  /** Tokens near a 3-dimensional subspace of 16 channels, with one wide channel as ViT residual streams have. */
  private static float[] lowRank(int n, int width, long seed) {
    Random fixed = new Random(0);
    float[][] directions = new float[3][width];
    for (float[] d : directions) {
      for (int c = 0; c < width; c++) {
        d[c] = (float) fixed.nextGaussian();
      }
    }
    Random rng = new Random(seed);
    float[] x = new float[n * width];
    for (int i = 0; i < n; i++) {
      double a = rng.nextGaussian() * 5;
      double b = rng.nextGaussian() * 2;
      double c = rng.nextGaussian();
      for (int ch = 0; ch < width; ch++) {
        x[i * width + ch] = (float) (a * directions[0][ch] + b * directions[1][ch] + c * directions[2][ch]
            + 0.01 * rng.nextGaussian() + (ch == 3 ? 40 : 0));
      }
    }
    return x;
  }

  private static double error(float[] a, float[] b) {
    double e = 0;
    double norm = 0;
    for (int i = 0; i < a.length; i++) {
      e += (a[i] - b[i]) * (a[i] - b[i]);
      norm += b[i] * b[i];
    }
    return Math.sqrt(e / norm);
  }

  @Test
  void theGraphsComputeWhatTheJavaTwinScoresAndPcaKeepsTheSubspace() throws Exception {
    int width = 16;
    float[] calibration = lowRank(2000, width, 1);
    float[] test = lowRank(12, width, 2);
    BoundaryCodec.Pca pca = BoundaryCodec.Pca.of(calibration, 2000, width);
    assertTrue(pca.variances()[2] > 100 * pca.variances()[3], "three components carry the variance");
    double previous = 0;
    for (int bits : List.of(8, 6, 4)) {
      BoundaryCodec codec = BoundaryCodec.fit(calibration, 2000, width, 8, bits, pca);
      assertEquals(8 * bits / 8, codec.bytesPerToken());
      float[] twin = codec.roundTrip(test, 12);
      float[] graphs = decode(codec, encode(codec, test, 12), 12);
      assertArrayEquals(twin, graphs, 1e-3f, bits + " bits: the exported halves decode what the search scored");
      double e = error(twin, test);
      assertTrue(e < (bits == 8 ? 0.01 : bits == 6 ? 0.03 : 0.15), bits + "-bit relative error " + e);
      assertTrue(e > previous, "fewer bits, more error");
      previous = e;
    }
    BoundaryCodec channels = BoundaryCodec.fit(calibration, 2000, width, width, 4, pca);
    BoundaryCodec projected = BoundaryCodec.fit(calibration, 2000, width, 8, 8, pca);
    assertEquals(channels.bytesPerToken(), projected.bytesPerToken(), "same bytes per token");
    assertTrue(error(projected.roundTrip(test, 12), test) < error(channels.roundTrip(test, 12), test),
        "at the same bytes, 8 PCA components at 8 bits beat 16 channels at 4 bits on low-rank tokens");
  }

  @Test
  void theLargestRankFitsTheBudgetInWholeGroups() {
    assertEquals(96, BoundaryCodec.largestRank(6240, 65, 192, 8));
    assertEquals(128, BoundaryCodec.largestRank(6240, 65, 192, 6));
    assertEquals(192, BoundaryCodec.largestRank(6240, 65, 192, 4));
    assertEquals(192, BoundaryCodec.largestRank(100_000, 65, 192, 8), "never more than the width");
    assertEquals(0, BoundaryCodec.largestRank(10, 65, 192, 4));
  }
}
