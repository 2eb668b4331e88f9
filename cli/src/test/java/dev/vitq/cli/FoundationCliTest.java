package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.HostileModels;
import dev.vitq.models.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FoundationCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void inspectJsonHasTheStructure() throws Exception {
    CliRun r = CliRun.of("inspect", SharedData.vitTiny().toString(), "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode root = JSON.readTree(r.out());
    for (String key : List.of("params", "opset", "nodes", "operators", "recognised", "vit")) {
      assertTrue(root.has(key), "missing key " + key);
    }
    assertTrue(root.get("recognised").asBoolean());
    assertEquals(5_362_762, root.get("params").asLong());
    assertEquals(17, root.get("opset").asInt());
    JsonNode j = root.get("vit");
    assertEquals(12, j.get("blocks").size());
    assertEquals(192, j.get("embed_dim").asInt());
    assertEquals(3, j.get("heads").asInt());
    assertEquals(65, j.get("tokens").asInt());
    JsonNode b0 = j.get("blocks").get(0);
    assertEquals("/blocks/blocks.0/attn/Softmax", b0.get("softmax").asText());
    assertEquals("/blocks/blocks.0/attn/qkv/MatMul", b0.get("qkv").asText());
    assertEquals("/blocks/blocks.0/mlp/fc2/MatMul", b0.get("fc2").asText());
  }

  @Test
  void buildThenInspectAndConvertEverySpelling(@TempDir Path dir) throws Exception {
    for (String spelling : List.of("timm-17", "hf-13", "dynamo-20", "tanh-18", "torch-export-18")) {
      Path model = dir.resolve(spelling + ".onnx");
      CliRun built = CliRun.of("models", "build", "--image-size", "32", "--patch", "8", "--width", "32", "--depth", "2",
          "--heads", "2", "--classes", "5", "--spelling", spelling, "--seed", "3", "-o", model.toString());
      assertEquals(0, built.exitCode(), built.err());
      CliRun inspected = CliRun.of("inspect", model.toString(), "--json");
      assertEquals(0, inspected.exitCode(), inspected.err());
      JsonNode j = JSON.readTree(inspected.out()).get("vit");
      assertEquals(2, j.get("blocks").size());
      assertEquals(2, j.get("heads").asInt());
      assertEquals(17, j.get("tokens").asInt());
      Path copy = dir.resolve(spelling + ".copy.onnx");
      assertEquals(0, CliRun.of("convert", model.toString(), "-o", copy.toString()).exitCode());
      assertArrayEquals(Files.readAllBytes(model), Files.readAllBytes(copy));
    }
  }

  @Test
  void convertKeepsTheSharedModelByteForByte(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("copy.onnx");
    CliRun r = CliRun.of("convert", SharedData.vitTiny().toString(), "-o", out.toString());
    assertEquals(0, r.exitCode(), r.err());
    assertArrayEquals(Files.readAllBytes(SharedData.vitTiny()), Files.readAllBytes(out));
  }

  @Test
  void usageErrorsExitWithTwo() {
    assertEquals(2, CliRun.of("convert", "x.onnx").exitCode());
    assertEquals(2, CliRun.of("inspect").exitCode());
    assertEquals(2, CliRun.of("frobnicate").exitCode());
    CliRun badSpelling = CliRun.of("models", "build", "--spelling", "keras", "-o", "x.onnx");
    assertEquals(2, badSpelling.exitCode());
    assertTrue(badSpelling.err().contains("timm-17"), "lists the legal values: " + badSpelling.err());
    assertEquals(2, CliRun.of("models", "build", "--patch", "15", "-o", "x.onnx").exitCode());
  }

  @Test
  void everyHostileModelGetsOneLineAndExitOne(@TempDir Path dir) throws Exception {
    Map<String, Path> cases = HostileModels.writeAll(dir);
    assertTrue(cases.size() >= 20);
    for (Map.Entry<String, Path> c : cases.entrySet()) {
      for (String command : List.of("inspect", "convert")) {
        Path out = dir.resolve("out-" + c.getKey() + ".onnx");
        CliRun r = command.equals("inspect")
            ? CliRun.of("inspect", c.getValue().toString())
            : CliRun.of("convert", c.getValue().toString(), "-o", out.toString());
        String what = command + " " + c.getKey() + ": " + r.err();
        assertEquals(1, r.exitCode(), what);
        assertEquals(1, r.err().lines().count(), what);
        assertTrue(r.err().startsWith("vitq: "), what);
        assertFalse(r.err().contains("Exception"), what);
        assertEquals("", r.out(), what);
        assertFalse(Files.exists(out), what);
      }
    }
    try (Stream<Path> files = Files.walk(dir)) {
      assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary file remains");
    }
  }

  @Test
  void modelsThatAreNotViTsConvertAndInspect(@TempDir Path dir) throws Exception {
    for (Map.Entry<String, Path> c : HostileModels.writeNonVits(dir).entrySet()) {
      Path copy = dir.resolve(c.getKey() + ".copy.onnx");
      CliRun converted = CliRun.of("convert", c.getValue().toString(), "-o", copy.toString());
      assertEquals(0, converted.exitCode(), converted.err());
      assertArrayEquals(Files.readAllBytes(c.getValue()), Files.readAllBytes(copy), c.getKey());
      CliRun inspected = CliRun.of("inspect", c.getValue().toString(), "--json");
      assertEquals(0, inspected.exitCode(), inspected.err());
      JsonNode j = JSON.readTree(inspected.out());
      assertFalse(j.get("recognised").asBoolean(), c.getKey());
      assertTrue(j.get("reason").asText().startsWith(c.getKey() + ".onnx is not a transformer encoder vitq recognises: "),
          j.get("reason").asText());
      assertTrue(j.get("vit").isNull(), c.getKey());
      CliRun text = CliRun.of("inspect", c.getValue().toString());
      assertTrue(text.out().contains("ViT: not recognised: " + c.getKey() + ".onnx is not a transformer encoder"), text.out());
    }
  }

  @Test
  void missingModelIsOneSentence() {
    CliRun r = CliRun.of("inspect", "/no/such/model.onnx");
    assertEquals(1, r.exitCode());
    assertEquals("vitq: Model file /no/such/model.onnx does not exist.\n", r.err());
  }
}
