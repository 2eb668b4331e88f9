package dev.vitq.quantizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.vitq.models.VitqException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * A quantization plan: one quantizer per quantized tensor, and what produced it. It is data: it serialises to JSON,
 * so a search can be saved, resumed, diffed and audited, and export is a function of the model and the plan.
 *
 * @param format the plan format, {@value #FORMAT}
 * @param modelSha256 the SHA-256 of the float model it was made for
 * @param scheme the bit-width scheme
 * @param method the scale initialisation
 * @param search the search that refined it ("none" or "evolq")
 * @param seed the seed of everything random that went into it
 * @param calibrationImages how many images calibration saw
 * @param weightCorrections the corrections of the rounded weights that shipping the plan applies, given calibration
 *     images (a plan holds scales, not weights); a plan that does not say gets its scheme's defaults
 * @param entries one entry per quantized tensor, in graph order
 */
public record QuantPlan(String format, String modelSha256, Scheme scheme, Method method, String search, long seed,
    int calibrationImages, Set<Technique> weightCorrections, List<PlanEntry> entries) {

  /** The current plan format. */
  public static final String FORMAT = "vitq-plan/1";

  private static final ObjectMapper JSON = new ObjectMapper()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(SerializationFeature.INDENT_OUTPUT)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

  public QuantPlan {
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(modelSha256, "modelSha256");
    Objects.requireNonNull(scheme, "scheme");
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(search, "search");
    if (weightCorrections == null) {
      weightCorrections = weightCorrections(Technique.defaults(scheme));
    } else if (!weightCorrections.stream().allMatch(Technique::correctsWeights)) {
      throw new IllegalArgumentException("weight_corrections lists " + weightCorrections + "; only GPTQ, "
          + "BIAS_CORRECTION and PATCH_BIAS_CORRECTION correct weights");
    }
    weightCorrections = weightCorrections(weightCorrections);
    entries = List.copyOf(entries);
  }

  /** The weight corrections among {@code techniques}, in a fixed order (plans serialise byte for byte the same). */
  public static Set<Technique> weightCorrections(Set<Technique> techniques) {
    Set<Technique> out = EnumSet.noneOf(Technique.class);
    techniques.stream().filter(Technique::correctsWeights).forEach(out::add);
    return Collections.unmodifiableSet(out);
  }

  /** The entry of a tensor, if it is quantized. */
  public Optional<PlanEntry> entry(String tensor) {
    for (PlanEntry e : entries) {
      if (e.tensor().equals(tensor)) {
        return Optional.of(e);
      }
    }
    return Optional.empty();
  }

  /** Entries by tensor name. */
  public Map<String, PlanEntry> byTensor() {
    Map<String, PlanEntry> m = new LinkedHashMap<>();
    entries.forEach(e -> m.put(e.tensor(), e));
    return m;
  }

  /** This plan with entries replaced where {@code updated} has the same tensor. */
  public QuantPlan withUpdated(List<PlanEntry> updated) {
    Map<String, PlanEntry> m = byTensor();
    updated.forEach(e -> m.put(e.tensor(), e));
    return new QuantPlan(format, modelSha256, scheme, method, search, seed, calibrationImages, weightCorrections,
        new ArrayList<>(m.values()));
  }

  /** This plan with {@code added} for a tensor it does not quantize, before the first entry of its block or later. */
  public QuantPlan withAdded(PlanEntry added) {
    List<PlanEntry> out = new ArrayList<>(entries);
    int at = 0;
    while (at < out.size() && out.get(at).block() < added.block()) {
      at++;
    }
    out.add(at, added);
    return new QuantPlan(format, modelSha256, scheme, method, search, seed, calibrationImages, weightCorrections, out);
  }

  /** This plan marked as refined by {@code searchName}. */
  public QuantPlan withSearch(String searchName) {
    return new QuantPlan(format, modelSha256, scheme, method, searchName, seed, calibrationImages, weightCorrections,
        entries);
  }

  /** The plan as JSON. */
  public String toJson() {
    try {
      return JSON.writeValueAsString(this) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("A plan always serialises", e);
    }
  }

  /**
   * A plan from JSON.
   *
   * @throws VitqException if the text is not a valid plan
   */
  public static QuantPlan fromJson(String json) throws VitqException {
    QuantPlan plan;
    try {
      plan = JSON.readValue(json, QuantPlan.class);
    } catch (JsonProcessingException e) {
      String why = e.getOriginalMessage();
      throw new VitqException("The quantization plan is not valid: " + (why == null ? "malformed JSON" : why.strip())
          + ".", e);
    }
    if (plan == null || !FORMAT.equals(plan.format())) {
      throw new VitqException("The quantization plan has format " + (plan == null ? "none" : plan.format())
          + "; vitq reads " + FORMAT + ".");
    }
    return plan;
  }
}
