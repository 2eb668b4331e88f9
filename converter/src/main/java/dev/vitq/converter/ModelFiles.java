package dev.vitq.converter;

import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Deployable model files: the ONNX file vitq writes itself, and the ORT-format file ONNX Runtime Mobile loads,
 * serialised by ONNX Runtime after its basic (provider-independent) optimisations. Both {@code quantize} and
 * {@code export} write through {@link #write}; {@code eval} and {@code bench} open either kind through
 * {@link #open}.
 */
public final class ModelFiles {
  /** The name ONNX Runtime's reduced-build script ({@code tools/ci_build/reduce_op_kernels.py}) is usually given. */
  public static final String REQUIRED_OPERATORS = "required_operators.config";

  /**
   * The optimisation level of ORT files: extended, the most that stays portable across phones (README, "ORT format
   * for phones"). The property {@code vitq.ortLevel} exists only to reproduce the comparison in BENCHMARKS.md.
   */
  static final InferenceSession.Level LEVEL =
      InferenceSession.Level.valueOf(System.getProperty("vitq.ortLevel", "EXTENDED"));

  private ModelFiles() {}

  /** A path's file name, or the path itself when it has none (a root). */
  public static String fileName(Path p) {
    return p.getFileName() == null ? p.toString() : p.getFileName().toString();
  }

  /** A file's size in bytes, or -1 when it cannot be read. */
  public static long sizeOf(Path p) {
    try {
      return Files.size(p);
    } catch (IOException e) {
      return -1;
    }
  }

  /**
   * Writes a quantized model in the formats asked for: {@code output} as ONNX and/or its {@code .ort} twin, which
   * then gets the operator list of ONNX Runtime's reduced build beside it ({@code NAME.required_operators.config}).
   *
   * @return the files written, the model first
   * @throws VitqException if ONNX Runtime refuses the model or a file cannot be written
   */
  public static List<Written> writeDeployable(Model model, Path output, Format format) throws VitqException {
    return writeDeployable(model, output, format, Target.CPU);
  }

  /**
   * As {@link #writeDeployable(Model, Path, Format)}, the ORT file as {@code runtime} takes it (see
   * {@link #write(Model, Path, Format, Target)}).
   */
  public static List<Written> writeDeployable(Model model, Path output, Format format, Target runtime)
      throws VitqException {
    List<Written> written = new ArrayList<>(write(model, output, format, runtime));
    if (format != Format.ONNX) {
      Path ort = withExtension(output, ".ort");
      written.add(writeRequiredOperators(withExtension(output, "." + REQUIRED_OPERATORS), List.of(model),
          List.of(fileName(ort)), runtime));
    }
    return written;
  }

  /**
   * The optimisation level of an ORT file for {@code runtime}: {@link #LEVEL} for the CPU provider; basic for the
   * others, whose QDQ groups the extended level would fuse into CPU kernels before any provider saw them (ONNX
   * Runtime's advice for NNAPI and CoreML models in ORT format).
   */
  static InferenceSession.Level level(Target runtime) {
    return runtime.contribKernels() ? LEVEL : InferenceSession.Level.BASIC;
  }

  /**
   * A file written, as the manifest lists it.
   *
   * @param path where it is
   * @param format "onnx", "ort" or "required-operators"
   * @param sha256 its SHA-256
   * @param bytes its size
   */
  public record Written(Path path, String format, String sha256, long bytes) {}

  /** Whether {@code file} is in ORT format, by its extension (as ONNX Runtime decides too). */
  static boolean isOrt(Path file) {
    return fileName(file).toLowerCase(java.util.Locale.ROOT).endsWith(".ort");
  }

  /** {@code onnx} with its {@code .onnx} extension (if any) replaced by {@code extension}. */
  static Path withExtension(Path onnx, String extension) {
    String name = fileName(onnx);
    String base = name.toLowerCase(java.util.Locale.ROOT).endsWith(".onnx") || isOrt(onnx)
        ? name.substring(0, name.lastIndexOf('.')) : name;
    return onnx.resolveSibling(base + extension);
  }

  /**
   * Writes {@code model} as {@code target} (ONNX), its ORT-format twin ({@code target} with extension {@code .ort}),
   * or both, each under a temporary name renamed into place.
   *
   * @return the files written, ONNX first
   * @throws VitqException if ONNX Runtime refuses the model or a file cannot be written
   */
  public static List<Written> write(Model model, Path target, Format format) throws VitqException {
    return write(model, target, format, Target.CPU);
  }

  /**
   * As {@link #write(Model, Path, Format)}, the ORT file for {@code runtime}: at its {@link #level}, and with INT4
   * weights stored as int8 levels, since ONNX Runtime's ORT format does not hold INT4 tensors (it writes them, then
   * refuses to load them: "Unsupported tensor data type").
   */
  public static List<Written> write(Model model, Path target, Format format, Target runtime) throws VitqException {
    List<Written> out = new ArrayList<>();
    if (format != Format.ORT) {
      Path onnx = isOrt(target) ? withExtension(target, ".onnx") : target;
      byte[] bytes = OnnxWriter.toBytes(model);
      AtomicFile.write(onnx, bytes);
      out.add(new Written(onnx, "onnx", Sha256.of(bytes), bytes.length));
    }
    if (format != Format.ONNX) {
      Path ort = withExtension(target, ".ort");
      Path tmp = AtomicFile.temporarySibling(ort);
      try {
        InferenceSession.saveOptimized(runtime.contribKernels() ? model : StandardQdq.withoutInt4(model), tmp, true,
            level(runtime));
        AtomicFile.moveIntoPlace(tmp, ort);
      } catch (IOException e) {
        throw new VitqException("Cannot write " + ort + ": " + e.getMessage() + ".", e);
      } finally {
        AtomicFile.deleteQuietly(tmp);
      }
      out.add(new Written(ort, "ort", Sha256.of(ort), sizeOf(ort)));
    }
    return out;
  }

  /**
   * The operators the ORT-format forms of {@code models} hold, in the format ONNX Runtime's reduced-build script
   * reads: comment lines, then one line per domain and opset, {@code domain;opset;Op1,Op2} (the default domain
   * spelled {@code ai.onnx}), sorted so the same models give the same bytes.
   *
   * @param names the file names the comment lists, one per model
   * @throws VitqException if ONNX Runtime refuses a model
   */
  static String requiredOperators(List<Model> models, List<String> names) throws VitqException {
    return requiredOperators(models, names, Target.CPU);
  }

  static String requiredOperators(List<Model> models, List<String> names, Target runtime) throws VitqException {
    InferenceSession.Level fileLevel = level(runtime);
    Map<String, TreeSet<String>> ops = new TreeMap<>();
    for (Model m : models) {
      // The operators are those of the graph ONNX Runtime saves at the ORT file's level, asked for in ONNX form
      // (which vitq reads). The fusions a RUNTIME-level file only records produce kernels (QLinearMatMul,
      // MatMulIntegerToFloat, ...) the reduced build must hold too: the EXTENDED graph, where they are applied,
      // lists them, so the list is the union of both (a superset: a few kernels too many, never one missing).
      List<InferenceSession.Level> levels = fileLevel == InferenceSession.Level.RUNTIME
          ? List.of(InferenceSession.Level.BASIC, InferenceSession.Level.EXTENDED) : List.of(fileLevel);
      for (InferenceSession.Level level : levels) {
        Model optimized = optimized(runtime.contribKernels() ? m : StandardQdq.withoutInt4(m), level);
        for (Node n : optimized.graph().nodes()) {
          String domain = n.domain().isEmpty() ? "ai.onnx" : n.domain();
          long opset = optimized.opset(n.domain());
          ops.computeIfAbsent(domain + ";" + opset, k -> new TreeSet<>()).add(n.opType());
        }
      }
    }
    StringBuilder s = new StringBuilder("# Generated by vitq from model/s:\n");
    for (String name : names) {
      s.append("# - ").append(name).append('\n');
    }
    ops.forEach((key, set) -> s.append(key).append(';').append(String.join(",", set)).append('\n'));
    return s.toString();
  }

  private static Model optimized(Model m, InferenceSession.Level level) throws VitqException {
    Path dir;
    try {
      dir = Files.createTempDirectory("vitq-operators-");
    } catch (IOException e) {
      throw new VitqException("Cannot create a temporary folder: " + e.getMessage() + ".", e);
    }
    try {
      Path file = dir.resolve("optimized.onnx");
      InferenceSession.saveOptimized(m, file, false, level);
      return OnnxReader.read(file);
    } finally {
      AtomicFile.deleteQuietly(dir);
    }
  }

  /** Writes the required-operators file for {@code models}. */
  public static Written writeRequiredOperators(Path target, List<Model> models, List<String> names)
      throws VitqException {
    return writeRequiredOperators(target, models, names, Target.CPU);
  }

  /** Writes the required-operators file for {@code models} as ORT files for {@code runtime} hold them. */
  public static Written writeRequiredOperators(Path target, List<Model> models, List<String> names, Target runtime)
      throws VitqException {
    byte[] bytes = requiredOperators(models, names, runtime).getBytes(StandardCharsets.UTF_8);
    AtomicFile.write(target, bytes);
    return new Written(target, "required-operators", Sha256.of(bytes), bytes.length);
  }

  /**
   * The interface (inputs, outputs, metadata) of an ONNX or ORT file; for ONNX the whole model.
   *
   * @throws VitqException if the file cannot be read
   */
  public static Model read(Path file) throws VitqException {
    if (!isOrt(file)) {
      return OnnxReader.read(file);
    }
    if (!Files.isRegularFile(file)) {
      throw new VitqException("No such file: " + file + ".");
    }
    try (InferenceSession s = InferenceSession.of(file, new InferenceSession.Config(1, false))) {
      return s.describe();
    }
  }

  /**
   * A session over a model file: an ORT file from the file (vitq has no IR of it), an ONNX file from the model read.
   *
   * @throws VitqException if ONNX Runtime refuses it
   */
  public static InferenceSession open(Path file, Model model, InferenceSession.Config config) throws VitqException {
    return isOrt(file) ? InferenceSession.of(file, config) : InferenceSession.of(model, config);
  }
}
