package dev.vitq.quantizer.search;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.QuantPlan;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Where a search stands after a block: enough to resume it and reach what an uninterrupted run reaches. The random
 * generator of each block visit is seeded from the search seed, the pass and the block, so the position is its state.
 *
 * @param format {@value #FORMAT}
 * @param modelSha256 the float model the search is for
 * @param settings the search settings
 * @param completedSteps block visits done
 * @param plan the plan after them
 * @param blocks what each visit did
 * @param heldOutBefore held-out agreement of the initial plan, or null without held-out images
 * @param searchSeconds wall time spent so far, across resumes
 */
public record SearchState(String format, String modelSha256, SearchSettings settings, int completedSteps,
    QuantPlan plan, List<BlockResult> blocks, Double heldOutBefore, double searchSeconds) {

  /** The state format. */
  public static final String FORMAT = "vitq-evolq-state/2";

  private static final ObjectMapper JSON = new ObjectMapper()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(SerializationFeature.INDENT_OUTPUT)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

  public SearchState {
    Objects.requireNonNull(format, "format");
    Objects.requireNonNull(plan, "plan");
    blocks = List.copyOf(blocks);
  }

  /** The state as JSON. */
  public String toJson() {
    try {
      return JSON.writeValueAsString(this) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("A search state always serialises", e);
    }
  }

  /**
   * A state from JSON.
   *
   * @throws VitqException if the text is not a search state
   */
  public static SearchState fromJson(String json) throws VitqException {
    SearchState s;
    try {
      s = JSON.readValue(json, SearchState.class);
    } catch (JsonProcessingException e) {
      String why = e.getOriginalMessage();
      throw new VitqException("The saved search state is not valid: " + (why == null ? "malformed JSON"
          : why.strip()) + ".", e);
    }
    if (s == null || !FORMAT.equals(s.format())) {
      throw new VitqException("The saved search state has format " + (s == null ? "none" : s.format())
          + "; vitq reads " + FORMAT + ".");
    }
    return s;
  }

  /** The state saved in {@code stateFile}. */
  static SearchState read(Path stateFile) throws VitqException {
    try {
      return SearchState.fromJson(Files.readString(stateFile));
    } catch (IOException e) {
      throw new VitqException("Cannot read the saved search state " + stateFile + ": " + e.getMessage() + ".", e);
    }
  }

  /** Saves the state to {@code stateFile}, written to a temporary name and renamed. */
  void save(Path stateFile) throws VitqException {
    AtomicFile.write(stateFile, toJson().getBytes(StandardCharsets.UTF_8));
  }

  /** Checks that this saved state continues a search of {@code initial} with {@code settings}. */
  void checkResumes(QuantPlan initial, SearchSettings settings) throws VitqException {
    if (!modelSha256().equals(initial.modelSha256())) {
      throw new VitqException("The saved search state is for another model; remove it or run without --resume.");
    }
    if (!settings().equals(settings)) {
      throw new VitqException("The saved search state was made with other search settings (" + settings()
          + "); pass the same options or run without --resume.");
    }
    if (!plan().byTensor().keySet().equals(initial.byTensor().keySet())
        || plan().scheme() != initial.scheme()) {
      throw new VitqException("The saved search state quantizes other tensors than this scheme; run without "
          + "--resume.");
    }
  }
}
