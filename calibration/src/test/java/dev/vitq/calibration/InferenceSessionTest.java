package dev.vitq.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class InferenceSessionTest {
  private static final InferenceSession.Config TWO_THREADS = new InferenceSession.Config(2, true);

  @Test
  void outputsReadInPlaceEqualCopiedOutputsRunAfterRun() throws Exception {
    Model vit = VitBuilder.build(VitConfig.tiny(16, 8, 4), Spelling.HF_13, 1);
    List<String> tensors = new ArrayList<>();
    for (Node n : vit.graph().nodes()) {
      if (n.is("MatMul") && tensors.size() < 6 && !tensors.contains(n.input(0))) {
        tensors.add(n.input(0));
      }
    }
    tensors.add(VitBuilder.OUTPUT);
    try (InferenceSession s = InferenceSession.of(ActivationStats.exposing(vit, tensors), TWO_THREADS)) {
      // Batch sizes repeat and change, so kept buffers are reused, grown and used in part.
      int seed = 0;
      for (int batch : new int[] {1, 3, 3, 1, 2, 4, 1}) {
        HostTensor x = HostTensor.ofFloats(new long[] {batch, 3, 16, 16}, OrtRunner.randomImages(batch, 16, seed++));
        Map<String, HostTensor> copied = s.run(Map.of(VitBuilder.INPUT, x), tensors);
        int[] seen = {0};
        s.run(Map.of(VitBuilder.INPUT, x), tensors, inPlace -> {
          assertEquals(tensors, List.copyOf(inPlace.keySet()));
          for (String t : tensors) {
            assertArrayEquals(copied.get(t).shape(), inPlace.get(t).shape(), t);
            assertArrayEquals(copied.get(t).floats(), inPlace.get(t).floats(), t + " at batch " + batch);
            seen[0]++;
          }
        });
        assertEquals(tensors.size(), seen[0]);
      }
    }
  }

  /** A model that asks ONNX Runtime for a float tensor of the shape it is fed. */
  private static Model constantOfShape() {
    Graph g = new Graph("g", List.of(Node.of("fill", "ConstantOfShape", List.of("shape"), List.of("y"))),
        List.of(Value.of("shape", TensorType.of(DType.INT64, 1))), List.of(Value.of("y", new TensorType(DType.FLOAT,
        null))), List.of(), List.of(), Blob.EMPTY);
    return new Model(8, List.of(new OpsetId("", 17)), "test", "1", "", 0, "", List.of(), g, Blob.EMPTY);
  }

  private static HostTensor shape(long n) {
    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
    return new HostTensor(DType.INT64, new long[] {1}, b);
  }

  @Test
  void anAllocationFailureSaysItRanOutOfMemory() throws Exception {
    try (InferenceSession s = InferenceSession.of(constantOfShape(), TWO_THREADS)) {
      assertEquals(3, s.run(Map.of("shape", shape(3)), List.of("y")).get("y").floats().length);
      // 4 TiB: past any machine's memory, so ONNX Runtime's allocator fails at once.
      VitqException e = assertThrows(VitqException.class, () -> s.run(Map.of("shape", shape(1L << 40)),
          List.of("y")));
      assertEquals("ONNX Runtime ran out of memory to run the model (it asked for 4,398,046,511,104 bytes).",
          e.getMessage());
      assertTrue(InferenceSession.outOfMemory(e));
      VitqException streamed = assertThrows(VitqException.class, () -> s.run(Map.of("shape", shape(1L << 40)),
          List.of("y"), out -> { }));
      assertTrue(InferenceSession.outOfMemory(streamed));
      // Other failures are not mistaken for it.
      VitqException negative = assertThrows(VitqException.class, () -> s.run(Map.of("shape", shape(-5)),
          List.of("y")));
      assertTrue(negative.getMessage().startsWith("ONNX Runtime failed to run the model: "), negative.getMessage());
      assertFalse(InferenceSession.outOfMemory(negative));
    }
  }

  @Test
  void aModelOnnxRuntimeRefusesIsOneSentenceWithoutTheTemporaryFile() {
    Graph g = new Graph("g", List.of(Node.of("n", "NoSuchOp", List.of("x"), List.of("y"))),
        List.of(Value.of("x", TensorType.of(DType.FLOAT, 1))), List.of(Value.of("y", new TensorType(DType.FLOAT,
        null))), List.of(), List.of(), Blob.EMPTY);
    Model m = new Model(8, List.of(new OpsetId("", 17)), "test", "1", "", 0, "", List.of(), g, Blob.EMPTY);
    VitqException e = assertThrows(VitqException.class, () -> InferenceSession.of(m, TWO_THREADS));
    assertTrue(e.getMessage().startsWith("ONNX Runtime cannot load the model: "), e.getMessage());
    assertTrue(e.getMessage().contains("No Op registered for NoSuchOp"), e.getMessage());
    assertFalse(e.getMessage().contains("vitq-session"), e.getMessage());
    assertFalse(InferenceSession.outOfMemory(e));
  }

  @Test
  void aClosedSessionRefusesToRun() throws Exception {
    InferenceSession s = InferenceSession.of(constantOfShape(), TWO_THREADS);
    s.close();
    s.close();
    assertThrows(IllegalStateException.class, () -> s.run(Map.of("shape", shape(1)), List.of("y")));
    assertThrows(IllegalStateException.class, () -> s.run(Map.of("shape", shape(1)), List.of("y"), out -> { }));
  }
}
