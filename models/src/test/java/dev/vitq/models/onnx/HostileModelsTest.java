package dev.vitq.models.onnx;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.HostileModels;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitRecognizer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostileModelsTest {
  @Test
  void theValidBaseIsAccepted(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("ok.onnx");
    HostileModels.writeValid(file);
    VitRecognizer.recognize(Canonicalizer.apply(OnnxReader.read(file), 0, 0), "ok.onnx").require();
  }

  @Test
  void everyHostileModelIsRefusedWithOneSentence(@TempDir Path dir) throws Exception {
    Map<String, Path> cases = HostileModels.writeAll(dir);
    assertTrue(cases.size() >= 20, "the corpus has at least 20 models");
    for (Map.Entry<String, Path> c : cases.entrySet()) {
      VitqException e = assertThrows(VitqException.class, () -> OnnxReader.read(c.getValue()), c.getKey());
      assertOneSentence(c.getKey(), e.getMessage());
    }
  }

  @Test
  void modelsThatAreNotViTsAreReadAndGetAReason(@TempDir Path dir) throws Exception {
    for (Map.Entry<String, Path> c : HostileModels.writeNonVits(dir).entrySet()) {
      Recognition r = VitRecognizer.recognize(Canonicalizer.apply(OnnxReader.read(c.getValue()), 0, 0), c.getKey());
      assertFalse(r.recognised(), c.getKey());
      assertTrue(r.reason().startsWith(c.getKey() + " is not a transformer encoder vitq recognises: "), r.reason());
      assertOneSentence(c.getKey(), r.reason());
    }
  }

  private static void assertOneSentence(String what, String message) {
    assertFalse(message.contains("\n"), what + ": " + message);
    assertTrue(message.endsWith("."), what + " ends its sentence: " + message);
    assertTrue(message.length() < 300, what + ": " + message);
  }
}
