package dev.vitq.server;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** What {@code POST /v1/decode} answers for one image: a classifier's top classes, or the model's output itself. */
final class Answers {
  private Answers() {}

  /**
   * A classifier's answer: the {@code k} best classes, highest logit first, each with its label (when the bundle has
   * labels), its softmax score and its logit.
   */
  static Map<String, Object> topClasses(float[] logits, int k, List<String> labels) {
    double max = Double.NEGATIVE_INFINITY;
    for (float v : logits) {
      max = Math.max(max, v);
    }
    double sum = 0;
    double[] p = new double[logits.length];
    for (int i = 0; i < logits.length; i++) {
      p[i] = Math.exp(logits[i] - max);
      sum += p[i];
    }
    Integer[] order = new Integer[logits.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    // Highest score first; ties by class index, so the answer is the same on every run.
    Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : a - b);
    List<Map<String, Object>> top = new ArrayList<>();
    for (int i = 0; i < Math.min(k, order.length); i++) {
      Map<String, Object> c = new LinkedHashMap<>();
      c.put("class", order[i]);
      c.put("label", order[i] < labels.size() ? labels.get(order[i]) : null);
      c.put("score", p[order[i]] / sum);
      c.put("logit", logits[order[i]]);
      top.add(c);
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("top", top);
    return out;
  }

  /**
   * An embedding model's answer as JSON: its output kind, the output's dimensions without the batch and its numbers,
   * row-major. One key holds the numbers whatever the output is, so a client reads every bundle alike.
   */
  static Map<String, Object> embedding(String kind, long[] dims, float[] values) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("kind", kind);
    out.put("shape", dims);
    out.put("embedding", values);
    return out;
  }

  /** The numbers as raw little-endian float32, row-major. */
  static byte[] float32(float[] values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return b.array();
  }

  /** Dimensions as a header carries them: comma-separated. */
  static String dims(long[] dims) {
    return Arrays.stream(dims).mapToObj(Long::toString).collect(Collectors.joining(","));
  }
}
