package dev.vitq.models.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vitq.models.HostileModels;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitRecognizer;

/**
 * Fuzzes the reader, checker, canonicaliser and recogniser: whatever the bytes, they either refuse with a {@link VitqException} or
 * accept a model that survives a write and a second read unchanged. Any other exception is a bug.
 *
 * <p>Half the inputs are raw bytes; the other half are a valid tiny ViT with fuzzer-chosen edits, which reaches
 * far deeper into the reader than bytes from nothing. In CI the fuzzer runs for a bounded time
 * ({@code JAZZER_FUZZ=1}); otherwise the test replays its seeds.
 */
class OnnxReaderFuzzTest {
  private static final byte[] VALID = HostileModels.validBytes();

  @FuzzTest(maxDuration = "60s")
  void readerRefusesOrRoundTrips(FuzzedDataProvider data) throws Exception {
    byte[] bytes = data.consumeBoolean() ? data.consumeRemainingAsBytes() : edited(data);
    Model model;
    try {
      model = OnnxReader.read(bytes, null, "fuzz.onnx");
    } catch (VitqException refused) {
      return;
    }
    byte[] written = OnnxWriter.toBytes(model);
    Model again = OnnxReader.read(written, null, "fuzz.onnx");
    assertEquals(model, again);
    assertArrayEquals(written, OnnxWriter.toBytes(again));
    // Canonicalising and recognising whatever the reader accepts gives a structure or a reason, never a crash.
    Recognition r = VitRecognizer.recognize(Canonicalizer.apply(model, 0, 0), "fuzz.onnx");
    assertEquals(r.recognised(), r.reason() == null);
  }

  /** The valid model with a few byte flips, overwrites, truncations or insertions. */
  private static byte[] edited(FuzzedDataProvider data) {
    byte[] b = VALID.clone();
    int edits = data.consumeInt(1, 6);
    for (int i = 0; i < edits && b.length > 0; i++) {
      int at = data.consumeInt(0, b.length - 1);
      switch (data.consumeInt(0, 3)) {
        case 0 -> b[at] ^= (byte) (1 << data.consumeInt(0, 7));
        case 1 -> b[at] = data.consumeByte();
        case 2 -> b = java.util.Arrays.copyOf(b, at);
        default -> {
          byte[] ins = data.consumeBytes(data.consumeInt(1, 16));
          byte[] grown = new byte[b.length + ins.length];
          System.arraycopy(b, 0, grown, 0, at);
          System.arraycopy(ins, 0, grown, at, ins.length);
          System.arraycopy(b, at, grown, at + ins.length, b.length - at);
          b = grown;
        }
      }
    }
    return b;
  }
}
