package dev.vitq.split;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.Format;
import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.Target;
import dev.vitq.converter.Sha256;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Evaluation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A device/cloud bundle on disk: {@code device.onnx}, {@code cloud.onnx} and {@code manifest.json}, written into a
 * temporary folder and renamed into place, so it appears complete or not at all.
 */
public final class Bundle {
  /** The tensor that crosses: the device's only output and the cloud's input of the same name, the coded tokens of
   * each image. */
  public static final String TOKENS = "boundary_tokens";
  static final String DEVICE = "device.onnx";
  static final String CLOUD = "cloud.onnx";
  static final String DEVICE_ORT = "device.ort";
  static final String CLOUD_ORT = "cloud.ort";
  /** The manifest's file name in a bundle folder. */
  public static final String MANIFEST = "manifest.json";
  static final String FORMAT = "vitq-bundle/2";
  /** The manifest's {@code cloud.output_kind} of a pooled vector per image. */
  public static final String OUTPUT_EMBEDDING = "embedding";
  /** The manifest's {@code cloud.output_kind} of a pooled vector projected (CLIP's projection). */
  public static final String OUTPUT_PROJECTION = "projection";
  /** The manifest's {@code cloud.output_kind} of one vector per token. */
  public static final String OUTPUT_TOKENS = "tokens";
  /** The output kind of a classifier, whose manifest names none. */
  public static final String OUTPUT_LOGITS = "logits";
  static final ObjectMapper JSON = new ObjectMapper()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(SerializationFeature.INDENT_OUTPUT);

  private Bundle() {}

  /**
   * Writes the two models and the manifest (which gets each file's hash) into {@code dir}, replacing a previous
   * bundle there.
   *
   * @throws VitqException if the folder cannot be written
   */
  static void write(Path dir, Model device, Model cloud, Map<String, Object> manifest, Format format)
      throws VitqException {
    write(dir, device, cloud, manifest, format, Target.CPU);
  }

  /** As {@link #write(Path, Model, Model, Map, Format)}, the ORT files as {@code target} takes them. */
  static void write(Path dir, Model device, Model cloud, Map<String, Object> manifest, Format format, Target target)
      throws VitqException {
    Path abs = dir.toAbsolutePath();
    Path parent = abs.getParent();
    Path tmp;
    try {
      Files.createDirectories(parent);
      if (Files.exists(abs) && !Files.isDirectory(abs)) {
        throw new VitqException("The bundle path " + dir + " is a file; pass a folder.");
      }
      tmp = Files.createTempDirectory(parent, "." + abs.getFileName() + ".");
    } catch (IOException e) {
      throw new VitqException("Cannot write into " + parent + ": " + e.getMessage() + ".", e);
    }
    try {
      List<ModelFiles.Written> written = new java.util.ArrayList<>();
      written.addAll(ModelFiles.write(device, tmp.resolve(DEVICE), format, target));
      written.addAll(ModelFiles.write(cloud, tmp.resolve(CLOUD), format, target));
      if (format != Format.ONNX) {
        // Only the device half runs on the phone, so only its operators go into the phone's reduced build.
        written.add(ModelFiles.writeRequiredOperators(tmp.resolve(ModelFiles.REQUIRED_OPERATORS), List.of(device),
            List.of(DEVICE_ORT), target));
      }
      Map<String, Object> files = new LinkedHashMap<>();
      for (ModelFiles.Written w : written) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("format", w.format());
        f.put("sha256", w.sha256());
        f.put("bytes", w.bytes());
        files.put(ModelFiles.fileName(w.path()), f);
      }
      Map<String, Object> full = new LinkedHashMap<>(manifest);
      full.put("files", files);
      Files.writeString(tmp.resolve(MANIFEST), JSON.writeValueAsString(full) + "\n");
      List<Path> all = new java.util.ArrayList<>(List.of(tmp, tmp.resolve(MANIFEST)));
      written.forEach(w -> all.add(w.path()));
      for (Path p : all) {
        Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString(
            Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
      }
      // Swap folders: the old bundle (if any) leaves only once the new one is complete beside it.
      Path old = null;
      if (Files.exists(abs)) {
        old = Files.createTempDirectory(parent, "." + abs.getFileName() + ".old.");
        Files.delete(old);
        Files.move(abs, old);
      }
      Files.move(tmp, abs);
      if (old != null) {
        deleteTree(old);
      }
    } catch (IOException e) {
      deleteTree(tmp);
      throw new VitqException("Cannot write the bundle " + dir + ": " + e.getMessage() + ".", e);
    } catch (RuntimeException | Error e) {
      deleteTree(tmp);
      throw e;
    }
  }

  private static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // A leftover temporary folder is harmless and named as one.
    }
  }

  /**
   * A bundle read back: its manifest and its two models, checked against the hashes the manifest records.
   *
   * @param dir the bundle folder
   * @param manifest the parsed manifest
   * @param device the device model
   * @param cloud the cloud model
   */
  public record Loaded(Path dir, JsonNode manifest, Path deviceFile, Model device, Path cloudFile, Model cloud) {
    long bytesPerImage() {
      return manifest.path("boundary").path("bytes_per_image").asLong();
    }

    /**
     * What the cloud half outputs: {@code logits} (a classifier), {@code embedding}, {@code projection} or
     * {@code tokens}.
     */
    public String outputKind() {
      return manifest.path("cloud").path("output_kind").asText(OUTPUT_LOGITS);
    }

    /** Whether the cloud half outputs a classifier's logits (measured by top-1), not an embedding. */
    public boolean classifier() {
      return outputKind().equals(OUTPUT_LOGITS);
    }
  }

  /**
   * Reads a bundle. Each half runs from its ORT file when the bundle has one (what ships to a phone), else from its
   * ONNX file.
   *
   * @throws VitqException if a file is missing, changed since export, or not a bundle of this format
   */
  public static Loaded read(Path dir) throws VitqException {
    Path manifestFile = dir.resolve(MANIFEST);
    if (!Files.isRegularFile(manifestFile)) {
      throw new VitqException(dir + " is not a vitq bundle: it has no " + MANIFEST + ".");
    }
    JsonNode manifest;
    try {
      manifest = JSON.readTree(Files.readString(manifestFile));
    } catch (IOException e) {
      throw new VitqException("The bundle manifest " + manifestFile + " is not valid JSON.", e);
    }
    if (!FORMAT.equals(manifest.path("format").asText())) {
      throw new VitqException("The bundle manifest has format '" + manifest.path("format").asText() + "'; vitq reads "
          + FORMAT + ".");
    }
    JsonNode files = manifest.path("files");
    for (var it = files.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      Path file = dir.resolve(f).normalize();
      if (!file.startsWith(dir.normalize()) || !Files.isRegularFile(file)) {
        throw new VitqException("The bundle " + dir + " has no " + f + ".");
      }
      if (!Sha256.of(file).equals(files.path(f).path("sha256").asText())) {
        throw new VitqException("The bundle's " + f + " does not match the SHA-256 its manifest records; it changed "
            + "after export.");
      }
    }
    Path device = dir.resolve(files.has(DEVICE_ORT) ? DEVICE_ORT : DEVICE);
    Path cloud = dir.resolve(files.has(CLOUD_ORT) ? CLOUD_ORT : CLOUD);
    for (Path p : List.of(device, cloud)) {
      if (!files.has(ModelFiles.fileName(p))) {
        throw new VitqException("The bundle " + dir + " has no " + ModelFiles.fileName(p) + ".");
      }
    }
    return new Loaded(dir, manifest, device, ModelFiles.read(device), cloud, ModelFiles.read(cloud));
  }

  /** Runs a device session and a cloud session as a phone and a server would: the device's outputs cross as is. */
  public record Pair(InferenceSession device, InferenceSession cloud) implements AutoCloseable {
    /**
     * Opens both halves of a bundle read.
     *
     * @throws VitqException if ONNX Runtime refuses either
     */
    public static Pair open(Loaded b, InferenceSession.Config config) throws VitqException {
      InferenceSession d = ModelFiles.open(b.deviceFile(), b.device(), config);
      try {
        return new Pair(d, ModelFiles.open(b.cloudFile(), b.cloud(), config));
      } catch (VitqException | RuntimeException e) {
        d.close();
        throw e;
      }
    }

    /** What crosses the network for these pixels. */
    public Map<String, HostTensor> encode(HostTensor pixels) throws VitqException {
      return device.run(Map.of(device.inputNames().get(0), pixels), device.outputNames());
    }

    /** The cloud's output (logits, or the embedding) from what crossed. */
    public HostTensor decode(Map<String, HostTensor> wire) throws VitqException {
      String out = cloud.outputNames().get(0);
      return cloud.run(wire, List.of(out)).get(out);
    }

    /** Device then cloud on these pixels: what the bundle computes, [batch, ...]. */
    public HostTensor run(HostTensor pixels) throws VitqException {
      return decode(encode(pixels));
    }

    /**
     * The bundle's output for every image, run device then cloud batch by batch, as an embedding model's are
     * measured ({@link Evaluation#embed}: a vector per image, the mean token of an output of tokens): compare it with
     * the float model's by {@link Evaluation.Embeddings#cosines} and {@link Evaluation.Embeddings#retrievalAgreement}.
     *
     * @throws VitqException if an image cannot be used or ONNX Runtime fails
     */
    public Evaluation.Embeddings embed(ImageDataset images, int batchSize, Progress progress) throws VitqException {
      return Evaluation.embed(this::run, images, batchSize, progress);
    }

    @Override
    public void close() {
      device.close();
      cloud.close();
    }
  }
}
