package dev.vitq.models.vit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.GraphIndex;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.Value;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The norm matcher tells an RMSNorm, spelled out or as the operator, from a LayerNorm. */
class PatternsNormTest {
  private static Optional<Norm> normOf(GraphBuilder b, String x) {
    Graph g = new Graph("g", b.nodes(), List.of(Value.of("x", TensorType.of(DType.FLOAT, 1, 4, 8))), List.of(),
        b.initializers(), List.of(), Blob.EMPTY);
    return new Patterns(GraphIndex.of(g)).normFrom(x);
  }

  private static String gamma(GraphBuilder b) {
    return b.initializer("gamma", Tensor.ofFloats("", List.of(8L), new float[] {1, 2, 3, 4, 5, 6, 7, 8}));
  }

  @Test
  void anRmsNormSpelledOutIsOneWithItsGammaAndNoBias() {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String mean = b.op("ReduceMean", List.of(b.op("Pow", List.of("x", b.scalar(2f)))), Attribute.ofInts("axes", -1));
    String root = b.op("Sqrt", List.of(b.op("Add", List.of(mean, b.scalar(1e-6f)))));
    String out = b.op("Mul", List.of(b.op("Div", List.of("x", root)), gamma(b)));
    Norm n = normOf(b, "x").orElseThrow();
    assertEquals(Norm.Kind.RMS_DECOMPOSED, n.kind());
    assertTrue(n.rms());
    assertEquals(out, n.output());
    assertEquals("gamma", n.scale());
    assertNull(n.bias());
    assertEquals(1e-6f, n.epsilon());
  }

  @Test
  void theRmsNormOperatorIsOne() {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String out = b.op("RMSNormalization", List.of("x", gamma(b)), Attribute.of("epsilon", 1e-5f));
    Norm n = normOf(b, "x").orElseThrow();
    assertEquals(Norm.Kind.RMS_OPERATOR, n.kind());
    assertEquals(out, n.output());
  }

  @Test
  void aSquareThatIsNotOfTheInputIsNoNorm() {
    GraphBuilder b = GraphBuilder.empty();
    b.reserve("x");
    String other = b.op("Relu", List.of("x"));
    String mean = b.op("ReduceMean", List.of(b.op("Mul", List.of("x", other))), Attribute.ofInts("axes", -1));
    b.op("Div", List.of("x", b.op("Sqrt", List.of(b.op("Add", List.of(mean, b.scalar(1e-6f)))))));
    assertTrue(normOf(b, "x").isEmpty());
  }
}
