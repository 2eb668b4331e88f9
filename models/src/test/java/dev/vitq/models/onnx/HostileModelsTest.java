package dev.vitq.models.onnx;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.HostileModels;
import dev.vitq.models.VitqException;
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
    VitRecognizer.recognize(OnnxReader.read(file), "ok.onnx");
  }

  @Test
  void everyHostileModelIsRefusedWithOneSentence(@TempDir Path dir) throws Exception {
    Map<String, Path> cases = HostileModels.writeAll(dir);
    assertTrue(cases.size() >= 20, "the corpus has at least 20 models");
    for (Map.Entry<String, Path> c : cases.entrySet()) {
      VitqException e = assertThrows(VitqException.class,
          () -> VitRecognizer.recognize(OnnxReader.read(c.getValue()), c.getKey()), c.getKey());
      String message = e.getMessage();
      assertFalse(message.contains("\n"), c.getKey() + ": " + message);
      assertTrue(message.endsWith("."), c.getKey() + " ends its sentence: " + message);
      assertTrue(message.length() < 300, c.getKey() + ": " + message);
    }
  }
}
