package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vitq check}: the table, the JSON, and bad input in one sentence. */
class CheckCliTest {
  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void model() {
    model = CliFixtures.model(dir, 2);
  }

  @Test
  void tableSaysHowManyNodesAndPartitionsAndWhatGoesToTheCpu() {
    CliRun r = CliRun.of("check", model.toString(), "--ep", "qnn");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.out().startsWith("vit.onnx on QNN (Qualcomm HTP), batch 1: "), r.out());
    assertTrue(r.out().contains(" in 3 partitions"), r.out());
    assertTrue(r.out().contains("ai.onnx:Erf"), r.out());
    assertTrue(r.out().contains("operator not supported"), r.out());
  }

  @Test
  void jsonHasTheCountsPartitionsAndEveryCpuNode() throws Exception {
    CliRun r = CliRun.of("check", model.toString(), "--ep", "nnapi", "--batch", "0", "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = Json.MAPPER.readTree(r.out());
    assertEquals("nnapi", j.get("ep").asText());
    assertTrue(j.get("batch").isNull(), "checked as written");
    int nodes = j.get("nodes").asInt();
    int taken = j.get("supported_nodes").asInt();
    int sum = 0;
    for (JsonNode s : j.get("partition_sizes")) {
      sum += s.asInt();
    }
    assertEquals(taken, sum);
    assertEquals(j.get("partitions").asInt(), j.get("partition_sizes").size());
    int cpu = 0;
    for (JsonNode c : j.get("cpu_nodes")) {
      assertTrue(c.has("name") && c.has("op") && c.has("kind") && c.has("reason"), c.toString());
      cpu += c.get("nodes").asInt();
    }
    assertEquals(nodes - taken, cpu);
    // The built model has a symbolic batch, which NNAPI cannot take as written.
    assertTrue(r.out().contains("\"kind\" : \"SHAPE\""), r.out());
  }

  @Test
  void unknownProviderIsOneSentence() throws Exception {
    CliRun.of("check", model.toString(), "--ep", "tpu")
        .assertUserError("Unknown execution provider 'tpu'; vitq check knows qnn, nnapi, coreml, xnnpack.",
            dir.resolve("nothing.onnx"));
  }

  @Test
  void unreadableModelIsOneSentence() throws Exception {
    Path junk = dir.resolve("junk.onnx");
    Files.writeString(junk, "not a model");
    CliRun r = CliRun.of("check", junk.toString(), "--ep", "qnn");
    assertEquals(1, r.exitCode(), r.out() + r.err());
    assertTrue(r.err().startsWith("vitq: "), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    CliRun missing = CliRun.of("check", dir.resolve("missing.onnx").toString(), "--ep", "qnn");
    assertEquals(1, missing.exitCode());
    assertEquals(1, missing.err().strip().lines().count(), missing.err());
  }
}
