package dev.vitq.models.canon;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.Attribute;
import dev.vitq.models.Blob;
import dev.vitq.models.DType;
import dev.vitq.models.Graph;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.OpsetId;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.Tensor;
import dev.vitq.models.TensorType;
import dev.vitq.models.UnusedParts;
import dev.vitq.models.Value;
import dev.vitq.models.onnx.OnnxWriter;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The dead-code pass: what no output reads goes, the interface and what is read stay, the outputs do not move. */
class DeadCodeTest {
  private static final TensorType X = TensorType.of(DType.FLOAT, 2, 4);

  private static Tensor floats(String name, float... v) {
    return Tensor.ofFloats(name, List.of((long) v.length), v);
  }

  private static Model model(List<OpsetId> opsets, Graph g, Blob extras) {
    return new Model(8, opsets, "test", "1", "", 0, "", List.of(), g, extras);
  }

  /**
   * y = Relu(x * c), with a folded-away multiplication's constant, a side branch nothing reads (its node, its
   * constant, its declared type), a declared type of a value that does not exist and an import of a domain no node
   * is in: ONNX Runtime warns about the unread constants at every load.
   */
  private static Model withDeadParts() {
    List<Node> nodes = List.of(
        Node.of("mul", "Mul", List.of("x", "c"), List.of("xc")),
        Node.of("side", "Add", List.of("x", "side_bias"), List.of("side_out")),
        Node.of("relu", "Relu", List.of("xc"), List.of("y")));
    Graph g = new Graph("g", nodes, List.of(Value.of("x", X)), List.of(Value.of("y", X)),
        List.of(floats("c", 1, 2, 3, 4), floats("folded_scale", 0.125f), floats("side_bias", 1, 1, 1, 1)),
        List.of(Value.of("xc", X), Value.of("side_out", X), Value.of("ghost", X)), Blob.EMPTY);
    return model(List.of(new OpsetId("", 17), new OpsetId("com.microsoft", 1), new OpsetId("pkg.torch", 1)), g,
        Blob.EMPTY);
  }

  @Test
  void removesWhatNoOutputReadsAndKeepsTheOutputs() throws Exception {
    Model before = withDeadParts();
    assertEquals(4, UnusedParts.of(before).size(), "the checker sees the dead parts: " + UnusedParts.of(before));

    Model after = DeadCode.apply(before);

    assertEquals(List.of(), UnusedParts.of(after));
    Graph g = after.graph();
    assertEquals(List.of("mul", "relu"), g.nodes().stream().map(Node::name).toList());
    assertEquals(List.of("c"), g.initializers().stream().map(Tensor::name).toList());
    assertEquals(List.of("xc"), g.valueInfo().stream().map(Value::name).toList());
    assertEquals(List.of(new OpsetId("", 17)), after.opsets(), "the default domain stays; unused imports go");
    assertEquals(before.graph().inputs(), g.inputs());
    assertEquals(before.graph().outputs(), g.outputs());
    float[] x = OrtRunner.randomFloats(8, 1);
    assertArrayEquals(OrtRunner.run(OnnxWriter.toBytes(before), "x", x, new long[] {2, 4}),
        OrtRunner.run(OnnxWriter.toBytes(after), "x", x, new long[] {2, 4}));
  }

  @Test
  void aCleanModelComesBackAsItIs() {
    Model clean = DeadCode.apply(withDeadParts());
    assertSame(clean, DeadCode.apply(clean));
  }

  /** Graph inputs are the interface, and an initializer that is also an input is a default a caller may override. */
  @Test
  void keepsUnreadInputsAndOverridableDefaults() {
    Graph g = new Graph("g", List.of(Node.of("relu", "Relu", List.of("x"), List.of("y"))),
        List.of(Value.of("x", X), Value.of("unused", X), Value.of("bias", TensorType.of(DType.FLOAT, 4))),
        List.of(Value.of("y", X)), List.of(floats("bias", 0, 0, 0, 0)), List.of(), Blob.EMPTY);
    Model m = model(List.of(new OpsetId("", 17)), g, Blob.EMPTY);
    assertSame(m, DeadCode.apply(m));
  }

  /** Imports stay when the model carries more than the IR models: local functions may use any of them. */
  @Test
  void keepsEveryImportOfAModelWithExtras() {
    Model m = withDeadParts();
    Model withExtras = model(m.opsets(), m.graph(), Blob.of(new byte[] {(byte) 0xa2, 0x01, 0x00}));
    assertEquals(m.opsets(), DeadCode.apply(withExtras).opsets());
    assertEquals(2, DeadCode.apply(withExtras).graph().nodes().size(), "the graph is still cleaned");
  }

  /**
   * A subgraph is cleaned too, and a constant only a subgraph reads (from the outer scope) stays; a domain only a
   * subgraph's node is in keeps its import.
   */
  @Test
  void cleansSubgraphsAndKeepsWhatTheyRead() {
    Graph then = new Graph("then", List.of(new Node("inner", "Shrink", "custom.ops", List.of("x", "k"), List.of("t"),
        List.of(), Blob.EMPTY)), List.of(), List.of(Value.of("t", X)), List.of(floats("dead_inner", 7)),
        List.of(Value.of("nothing", X)), Blob.EMPTY);
    Graph otherwise = new Graph("else", List.of(Node.of("neg", "Neg", List.of("x"), List.of("e"))), List.of(),
        List.of(Value.of("e", X)), List.of(), List.of(), Blob.EMPTY);
    Node branch = new Node("if", "If", "", List.of("cond"), List.of("y"),
        List.of(new Attribute.GraphAttr("then_branch", then, Blob.EMPTY),
            new Attribute.GraphAttr("else_branch", otherwise, Blob.EMPTY)), Blob.EMPTY);
    Graph g = new Graph("g", List.of(branch), List.of(Value.of("x", X), Value.of("cond",
        TensorType.of(DType.BOOL))), List.of(Value.of("y", X)), List.of(floats("k", 1), floats("dead_outer", 2)),
        List.of(), Blob.EMPTY);
    Model m = model(List.of(new OpsetId("", 17), new OpsetId("custom.ops", 1)), g, Blob.EMPTY);
    assertEquals(3, UnusedParts.of(m).size(), UnusedParts.of(m).toString());

    Model after = DeadCode.apply(m);

    assertEquals(List.of(), UnusedParts.of(after));
    assertEquals(List.of("k"), after.graph().initializers().stream().map(Tensor::name).toList());
    Graph cleanThen = ((Attribute.GraphAttr) after.graph().nodes().get(0).attributes().get(0)).value();
    assertTrue(cleanThen.initializers().isEmpty());
    assertTrue(cleanThen.valueInfo().isEmpty());
    assertEquals("then_branch", after.graph().nodes().get(0).attributes().get(0).name(), "attribute order kept");
    assertEquals(m.opsets(), after.opsets());
    assertFalse(after.graph().nodes().isEmpty());
  }
}
