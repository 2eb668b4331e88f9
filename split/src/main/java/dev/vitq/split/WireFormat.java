package dev.vitq.split;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.vitq.calibration.HostTensor;
import dev.vitq.models.DType;
import dev.vitq.models.VitqException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The device/cloud boundary as a bundle's manifest describes it (its {@code boundary} section): which tensors cross,
 * which of them an image sends and which are constants the manifest records, and how one image's bytes are laid out.
 * This is the only place {@code vitq serve} reads the manifest's wire section, so a new boundary format changes this
 * class and nothing else.
 *
 * <p>The section lists its tensors under {@code tensors}, or, in wire format {@code vitq-boundary/1}, the one
 * per-image tensor under {@code tensor}. One image's body is the per-image tensors (those whose shape starts with
 * {@code "batch"}) in manifest order, each as its elements in row-major order, little-endian, without the batch
 * dimension. Tensors without a batch dimension are constants: their value is the tensor entry's {@code value}, else
 * the boundary section's entry named as the tensor without its {@code boundary_} prefix (today's {@code scale},
 * {@code zero_point}, {@code channel_factor}).
 */
public final class WireFormat {
  /** The version of the manifest's boundary section this class reads and {@link Manifest} writes. */
  static final String VERSION = "vitq-boundary/1";

  /**
   * One tensor crossing the boundary.
   *
   * @param name the cloud model's input name
   * @param dtype its element type
   * @param dims its dimensions without the batch (per-image tensors) or all of them (constants)
   * @param bits the bits of each element's code when the manifest narrows an 8-bit type, else 0
   * @param constant its value when the image does not send it, else null
   */
  public record Tensor(String name, DType dtype, long[] dims, int bits, HostTensor constant) {
    boolean perImage() {
      return constant == null;
    }

    long bytes() {
      return elements(dims) * (dtype.bits() / 8);
    }
  }

  private final List<Tensor> tensors;
  private final long bytesPerImage;

  private WireFormat(List<Tensor> tensors, long bytesPerImage) {
    this.tensors = List.copyOf(tensors);
    this.bytesPerImage = bytesPerImage;
  }

  /**
   * Reads the boundary section of a bundle manifest.
   *
   * @throws VitqException if the section is missing, inconsistent or names a type this server does not read
   */
  public static WireFormat of(JsonNode manifest) throws VitqException {
    JsonNode boundary = manifest.path("boundary");
    String wire = boundary.path("wire_format").asText("");
    if (!wire.isEmpty() && !wire.equals(VERSION)) {
      throw new VitqException("The bundle's boundary is in wire format '" + wire + "'; this vitq serves "
          + VERSION + ".");
    }
    JsonNode list = boundary.path("tensors");
    if (!list.isArray() && boundary.path("tensor").isObject()) {
      // vitq-boundary/1: one per-image tensor, every constant inside cloud.onnx.
      list = JsonNodeFactory.instance.arrayNode().add(boundary.get("tensor"));
    }
    if (!list.isArray() || list.isEmpty()) {
      throw new VitqException("The bundle manifest has no boundary tensors, so it does not say what the device sends.");
    }
    List<Tensor> tensors = new ArrayList<>();
    long perImage = 0;
    for (JsonNode t : list) {
      String name = t.path("name").asText("");
      if (name.isEmpty()) {
        throw new VitqException("A boundary tensor in the bundle manifest has no name.");
      }
      DType dtype = dtype(name, t.path("dtype").asText(""));
      JsonNode shape = t.path("shape");
      if (!shape.isArray()) {
        throw new VitqException("The boundary tensor " + name + " has no shape in the bundle manifest.");
      }
      boolean batched = !shape.isEmpty() && shape.get(0).isTextual();
      List<Long> dims = new ArrayList<>();
      for (int i = batched ? 1 : 0; i < shape.size(); i++) {
        if (!shape.get(i).canConvertToLong() || shape.get(i).asLong() <= 0) {
          throw new VitqException("The boundary tensor " + name + " has the dimension '" + shape.get(i).asText()
              + "' in the bundle manifest; only its first may be the batch.");
        }
        dims.add(shape.get(i).asLong());
      }
      long[] d = dims.stream().mapToLong(Long::longValue).toArray();
      int bits = t.path("bits").asInt(0);
      if (bits < 0 || bits > dtype.bits() || (bits != 0 && dtype.bits() != 8)) {
        throw new VitqException("The boundary tensor " + name + " declares " + bits + "-bit codes in " + dtype
            + " elements, which vitq serve does not read.");
      }
      HostTensor constant = null;
      if (!batched) {
        JsonNode value = t.has("value") ? t.get("value") : boundary.path(name.replaceFirst("^boundary_", ""));
        constant = constant(name, dtype, d, value);
      } else {
        perImage += elements(d) * (dtype.bits() / 8);
      }
      tensors.add(new Tensor(name, dtype, d, bits, constant));
    }
    if (perImage == 0) {
      throw new VitqException("No boundary tensor in the bundle manifest has a batch dimension, so no image sends "
          + "anything.");
    }
    long declared = boundary.path("bytes_per_image").asLong(perImage);
    if (declared != perImage) {
      throw new VitqException("The bundle manifest says " + declared + " bytes per image, but its boundary tensors "
          + "add up to " + perImage + ".");
    }
    return new WireFormat(tensors, perImage);
  }

  private static DType dtype(String name, String text) throws VitqException {
    return switch (text) {
      case "uint8" -> DType.UINT8;
      case "int8" -> DType.INT8;
      case "float32", "float" -> DType.FLOAT;
      default -> throw new VitqException("The boundary tensor " + name + " has dtype '" + text + "', which vitq serve "
          + "does not read (it reads uint8, int8 and float32).");
    };
  }

  private static HostTensor constant(String name, DType dtype, long[] dims, JsonNode value) throws VitqException {
    List<Double> values = new ArrayList<>();
    if (value.isNumber()) {
      values.add(value.asDouble());
    } else if (value.isArray()) {
      for (JsonNode v : value) {
        if (!v.isNumber()) {
          throw new VitqException("The boundary constant " + name + " holds '" + v.asText() + "', not a number.");
        }
        values.add(v.asDouble());
      }
    } else {
      throw new VitqException("The bundle manifest records no value for the boundary tensor " + name
          + ", which the device does not send per image.");
    }
    if (values.size() != elements(dims)) {
      throw new VitqException("The boundary constant " + name + " has " + values.size() + " values in the bundle "
          + "manifest, but its shape holds " + elements(dims) + ".");
    }
    ByteBuffer b = ByteBuffer.allocateDirect(values.size() * (dtype.bits() / 8)).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) {
      switch (dtype) {
        case FLOAT -> b.putFloat((float) v);
        default -> b.put((byte) (long) v);
      }
    }
    b.flip();
    return new HostTensor(dtype, dims, b);
  }

  /** Bytes one image sends. */
  public long bytesPerImage() {
    return bytesPerImage;
  }

  /** Every tensor the cloud model takes, in manifest order. */
  public List<Tensor> tensors() {
    return tensors;
  }

  /** One line describing the layout, for logs and the health answer. */
  public String describe() {
    List<String> parts = new ArrayList<>();
    for (Tensor t : tensors) {
      if (t.perImage()) {
        parts.add(t.name() + " " + t.dtype().name().toLowerCase(Locale.ROOT) + java.util.Arrays.toString(t.dims()));
      }
    }
    return String.join(" + ", parts) + " = " + bytesPerImage + " bytes per image";
  }

  /**
   * Why one image's body is not a valid boundary, in one sentence, or null when it is.
   */
  public String problem(byte[] body) {
    if (body.length != bytesPerImage) {
      return "The body has " + (body.length > bytesPerImage ? "more than " + bytesPerImage : body.length)
          + " bytes; this bundle takes exactly " + bytesPerImage + " per image (" + describe() + ").";
    }
    ByteBuffer b = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
    int offset = 0;
    for (Tensor t : tensors) {
      if (!t.perImage()) {
        continue;
      }
      int n = Math.toIntExact(elements(t.dims()));
      if (t.dtype() == DType.FLOAT) {
        for (int i = 0; i < n; i++) {
          if (!Float.isFinite(b.getFloat(offset + 4 * i))) {
            return "Element " + i + " of " + t.name() + " is not a finite float32.";
          }
        }
      } else if (t.bits() != 0 && t.bits() < 8) {
        int limit = t.dtype() == DType.UINT8 ? 1 << t.bits() : 1 << (t.bits() - 1);
        for (int i = 0; i < n; i++) {
          int v = t.dtype() == DType.UINT8 ? body[offset + i] & 0xff : body[offset + i];
          if (v >= limit || v < -limit) {
            return "Element " + i + " of " + t.name() + " is " + v + ", outside its " + t.bits() + "-bit codes.";
          }
        }
      }
      offset += Math.toIntExact(t.bytes());
    }
    return null;
  }

  /**
   * The cloud model's inputs for a batch of images whose bodies passed {@link #problem}: per-image tensors stacked
   * along a new first dimension, constants as recorded.
   */
  public Map<String, HostTensor> feed(List<byte[]> images) {
    Map<String, HostTensor> out = new java.util.LinkedHashMap<>();
    int offset = 0;
    for (Tensor t : tensors) {
      if (!t.perImage()) {
        out.put(t.name(), t.constant());
        continue;
      }
      int bytes = Math.toIntExact(t.bytes());
      ByteBuffer b = ByteBuffer.allocateDirect(bytes * images.size()).order(ByteOrder.LITTLE_ENDIAN);
      for (byte[] image : images) {
        b.put(image, offset, bytes);
      }
      b.flip();
      long[] shape = new long[t.dims().length + 1];
      shape[0] = images.size();
      System.arraycopy(t.dims(), 0, shape, 1, t.dims().length);
      out.put(t.name(), new HostTensor(t.dtype(), shape, b));
      offset += bytes;
    }
    return out;
  }

  private static long elements(long[] dims) {
    long n = 1;
    for (long d : dims) {
      n *= d;
    }
    return n;
  }
}
