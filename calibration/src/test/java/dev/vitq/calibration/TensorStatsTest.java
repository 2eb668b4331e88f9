package dev.vitq.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TensorStatsTest {
  @Test
  void channelExtremesAndMeansOfTheLastAxis() {
    TensorStats s = new TensorStats("t");
    // Two rows of three channels, then one more row.
    s.add(new float[] {1, -2, 5, 3, 4, -1}, 3);
    s.add(FloatBuffer.wrap(new float[] {2, 0, 8}), 3);
    assertArrayEquals(new float[] {1, -2, -1}, s.channelMin());
    assertArrayEquals(new float[] {3, 4, 8}, s.channelMax());
    assertArrayEquals(new double[] {2, 2.0 / 3, 4}, s.channelMeans(), 1e-12);
    assertEquals(3, s.rows());
    assertEquals(9, s.histogram().total());
    assertEquals(-2, s.histogram().min());
    assertEquals(8, s.histogram().max());
  }

  @Test
  void aLargeTensorFoldedThroughItsWindowEqualsItFoldedInRows() {
    Random r = new Random(4);
    int channels = 96;
    float[] v = new float[channels * 1000];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) r.nextGaussian() * (1 + i % channels);
    }
    TensorStats whole = new TensorStats("whole");
    // Only part of a buffer counts: from its position to its limit.
    FloatBuffer padded = FloatBuffer.allocate(v.length + 10);
    padded.position(5);
    padded.put(v);
    padded.position(5).limit(5 + v.length);
    whole.add(padded, channels);
    assertEquals(5, padded.position());
    TensorStats rows = new TensorStats("rows");
    for (int i = 0; i < v.length; i += channels) {
      rows.add(java.util.Arrays.copyOfRange(v, i, i + channels), channels);
    }
    assertArrayEquals(rows.channelMin(), whole.channelMin());
    assertArrayEquals(rows.channelMax(), whole.channelMax());
    assertArrayEquals(rows.channelMeans(), whole.channelMeans());
    assertArrayEquals(rows.histogram().counts(), whole.histogram().counts());
  }

  @Test
  void aChangedLastAxisIsRefused() {
    TensorStats s = new TensorStats("t");
    s.add(new float[] {1, 2, 3, 4}, 2);
    assertThrows(IllegalArgumentException.class, () -> s.add(new float[] {1, 2, 3}, 3));
    assertThrows(IllegalArgumentException.class, () -> s.add(new float[] {1, 2, 3}, 2));
  }
}
