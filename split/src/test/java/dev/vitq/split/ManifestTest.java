package dev.vitq.split;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import dev.vitq.converter.Target;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.converter.FixedPlans;
import dev.vitq.converter.Format;
import dev.vitq.models.Model;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.canon.Canonicalizer;
import dev.vitq.models.vit.VitRecognizer;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Scheme;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The manifest lists every object's keys in the order its code writes them, so the same export gives the same bytes
 * in every run (objects built with {@code Map.of} iterated in an order salted per JVM).
 */
class ManifestTest {
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 3, 2, 64, 5);

  @Test
  void everyObjectKeepsTheOrderItIsWrittenIn() throws Exception {
    Model model = Canonicalizer.apply(VitBuilder.build(CONFIG, Spelling.TIMM_17, 4), 32, 32);
    VitStructure vit = VitRecognizer.recognize(model, "test").require();
    QuantPlan plan = FixedPlans.plan(model, vit, Scheme.W8A8);
    Reduction none = new Reduction.None();
    Split.Parts parts = Split.of(model, model, vit, plan, 1, none, false, null, Target.CPU);
    Preprocessing pre = new Preprocessing(32, 32, 1 / 255.0, new double[] {0.5, 0.5, 0.5},
        new double[] {0.5, 0.5, 0.5}, 0);
    SplitRequest r = new SplitRequest(Path.of("bundle"), Path.of("models/vit.onnx"), "00ff", model, model, vit, plan,
        pre, 1, none, false, 0, Format.ONNX, Target.CPU);
    JsonNode m = Bundle.JSON.valueToTree(Manifest.of(r, parts, none, null));

    assertEquals(List.of("format", "vitq_version", "source", "preprocessing", "labels", "scheme", "method", "search",
        "seed", "split", "token_reduction", "cloud_precision", "boundary", "device", "cloud"), keys(m));
    assertEquals(List.of("model", "sha256"), keys(m.path("source")));
    assertEquals(List.of("device_blocks", "cloud_blocks", "depth"), keys(m.path("split")));
    assertEquals(List.of("name", "dtype", "shape", "device_output", "cloud_input"),
        keys(m.path("boundary").path("tensor")));
    assertEquals(List.of("files", "input", "outputs"), keys(m.path("device")));
    assertEquals(List.of("files", "inputs", "output"), keys(m.path("cloud")));
    assertEquals("models/vit.onnx", m.path("source").path("model").asText());
    assertEquals(2, m.path("split").path("cloud_blocks").asInt());
  }

  @Test
  void orderedMapsKeepTheirOrderAndRefuseAKeyWithoutAValue() {
    assertEquals(List.of("z", "a", "m"), new ArrayList<>(OrderedMaps.of("z", 1, "a", 2, "m", 3).keySet()));
    assertThrows(IllegalArgumentException.class, () -> OrderedMaps.of("z", 1, "a"));
  }

  private static List<String> keys(JsonNode object) {
    List<String> out = new ArrayList<>();
    object.fieldNames().forEachRemaining(out::add);
    return out;
  }
}
