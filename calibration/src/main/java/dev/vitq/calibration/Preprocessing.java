package dev.vitq.calibration;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.models.VitqException;
import java.util.Arrays;
import java.util.List;

/**
 * How images become model input: optional resize of the shorter side and centre crop, then per-channel
 * {@code (pixel * scale - mean) / std}, in NCHW layout.
 *
 * @param height input height
 * @param width input width
 * @param scale factor applied to 0..255 pixel values first
 * @param mean per-channel mean, subtracted after scaling
 * @param std per-channel standard deviation, divided by last
 * @param resize shorter side to resize to before cropping, or 0 to take images as they are
 */
public record Preprocessing(int height, int width, double scale, double[] mean, double[] std, int resize) {
  private static final ObjectMapper JSON = new ObjectMapper();

  public Preprocessing {
    if (height <= 0 || width <= 0) {
      throw new IllegalArgumentException("Input size must be positive, got " + height + "x" + width);
    }
    if (mean.length != 3 || std.length != 3) {
      throw new IllegalArgumentException("Mean and std need 3 values each (R, G, B)");
    }
    for (double s : std) {
      if (!(s > 0)) {
        throw new IllegalArgumentException("Std values must be positive, got " + Arrays.toString(std));
      }
    }
    if (resize < 0) {
      throw new IllegalArgumentException("Resize must be positive or 0 (none), got " + resize);
    }
    mean = mean.clone();
    std = std.clone();
  }

  /** ImageNet statistics at the given size, without resizing. */
  public static Preprocessing imagenet(int size) {
    return new Preprocessing(size, size, 1 / 255.0, new double[] {0.485, 0.456, 0.406},
        new double[] {0.229, 0.224, 0.225}, 0);
  }

  /**
   * Preprocessing from a model's {@code preprocess} metadata (keys {@code image_size}, {@code scale},
   * {@code mean}, {@code std}, optionally {@code resize}).
   *
   * @throws VitqException if the JSON is malformed or misses a key
   */
  public static Preprocessing fromMetadata(String json) throws VitqException {
    try {
      JsonNode n = JSON.readTree(json);
      JsonNode size = n.path("image_size");
      int h;
      int w;
      if (size.isArray() && size.size() == 2) {
        h = size.get(0).asInt();
        w = size.get(1).asInt();
      } else if (size.isInt()) {
        h = w = size.asInt();
      } else {
        throw new VitqException("The model's preprocess metadata has no image_size.");
      }
      if (n.has("layout") && !n.get("layout").asText().equals("NCHW")) {
        throw new VitqException("The model's preprocess metadata asks for layout " + n.get("layout").asText()
            + "; vitq feeds NCHW.");
      }
      return new Preprocessing(h, w, n.path("scale").asDouble(1 / 255.0), triple(n.path("mean"), "mean"),
          triple(n.path("std"), "std"), n.path("resize").asInt(0));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new VitqException("The model's preprocess metadata is not valid JSON.", e);
    } catch (IllegalArgumentException e) {
      throw new VitqException("The model's preprocess metadata is unusable: " + e.getMessage() + ".", e);
    }
  }

  /** The labels listed in a {@code preprocess} metadata JSON, or an empty list. */
  public static List<String> labelsFromMetadata(String json) {
    try {
      JsonNode labels = JSON.readTree(json).path("labels");
      return labels.isArray() ? java.util.stream.StreamSupport.stream(labels.spliterator(), false)
          .map(JsonNode::asText).toList() : List.of();
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      return List.of();
    }
  }

  private static double[] triple(JsonNode n, String key) throws VitqException {
    if (!n.isArray() || n.size() != 3) {
      throw new VitqException("The model's preprocess metadata needs three '" + key + "' values.");
    }
    return new double[] {n.get(0).asDouble(), n.get(1).asDouble(), n.get(2).asDouble()};
  }

  /** This preprocessing resizing the shorter side to {@code newResize} and centre-cropping to the input size. */
  public Preprocessing withResize(int newResize) {
    return new Preprocessing(height, width, scale, mean, std, newResize);
  }

  @Override
  public double[] mean() {
    return mean.clone();
  }

  @Override
  public double[] std() {
    return std.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Preprocessing p && p.height == height && p.width == width && p.scale == scale
        && Arrays.equals(p.mean, mean) && Arrays.equals(p.std, std) && p.resize == resize;
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hash(height, width, scale, Arrays.hashCode(mean), Arrays.hashCode(std), resize);
  }

  @Override
  public String toString() {
    return "Preprocessing[" + height + "x" + width + ", scale " + scale + ", mean " + Arrays.toString(mean) + ", std "
        + Arrays.toString(std) + (resize > 0 ? ", resize " + resize + " + centre crop" : "") + "]";
  }

  /** As JSON in the {@code preprocess} metadata format. */
  public String toJson() {
    var n = JSON.createObjectNode();
    n.putArray("image_size").add(height).add(width);
    n.put("layout", "NCHW");
    n.put("scale", scale);
    var m = n.putArray("mean");
    var s = n.putArray("std");
    for (int c = 0; c < 3; c++) {
      m.add(mean[c]);
      s.add(std[c]);
    }
    if (resize > 0) {
      n.put("resize", resize);
    }
    return n.toString();
  }
}
