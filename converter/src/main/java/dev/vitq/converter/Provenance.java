package dev.vitq.converter;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.Model;
import dev.vitq.quantizer.QuantPlan;
import dev.vitq.quantizer.Scheme;
import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

/**
 * Where a file vitq writes came from: vitq's version, and the {@code vitq} metadata entry every quantized model (and
 * each half of a bundle) carries, so an artifact can be traced to its source model, plan and seed.
 */
public final class Provenance {
  private Provenance() {}

  /** vitq's version, as Maven stamped it. */
  public static String version() {
    try (InputStream in = Provenance.class.getResourceAsStream("version.properties")) {
      Properties p = new Properties();
      if (in != null) {
        p.load(in);
      }
      return p.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }

  /** The {@code vitq} metadata entry of a quantized model: where it came from and how it was made. */
  public static String of(String source, String sha, QuantPlan plan) {
    Map<String, Object> p = new LinkedHashMap<>();
    p.put("vitq_version", version());
    p.put("source", source.replace('\\', '/'));
    p.put("source_sha256", sha);
    p.put("scheme", plan.scheme().cliName());
    p.put("method", plan.method().cliName());
    p.put("search", plan.search());
    p.put("seed", plan.seed());
    p.put("calibration_images", plan.calibrationImages());
    p.put("quantized_tensors", plan.entries().size());
    return json(p);
  }

  /**
   * The {@code vitq} metadata entry of a model written without calibration ({@link Scheme#dataFree}): no method,
   * search or images, and the layers the scheme rewrote.
   */
  public static String ofDataFree(String source, String sha, Scheme scheme, int layers) {
    Map<String, Object> p = new LinkedHashMap<>();
    p.put("vitq_version", version());
    p.put("source", source.replace('\\', '/'));
    p.put("source_sha256", sha);
    p.put("scheme", scheme.cliName());
    p.put("calibration_images", 0);
    p.put("quantized_tensors", layers);
    return json(p);
  }

  private static String json(Map<String, Object> p) {
    try {
      return new ObjectMapper().writeValueAsString(p);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("Provenance always serialises", e);
    }
  }

  /** {@code model} with vitq as its producer and {@code provenance} ({@link #of}) as its {@code vitq} entry. */
  public static Model stamp(Model model, String provenance) {
    return model.withProducer("vitq", version()).withMetadata("vitq", provenance);
  }
}
