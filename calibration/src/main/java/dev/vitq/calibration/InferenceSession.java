package dev.vitq.calibration;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.vitq.models.AtomicFile;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.OnnxWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An ONNX Runtime session over an IR model or a model file, closed with try-with-resources. Inputs and outputs
 * cross as {@link HostTensor}s; every native tensor lives only inside a run. {@link #run(Map, List, OutputSink)} keeps
 * output buffers between calls, so calls of it must not overlap; the copying {@link #run(Map, List)} may.
 *
 * {@snippet lang="java" :
 * try (InferenceSession s = InferenceSession.of(model, InferenceSession.Config.defaults())) {
 *   Map<String, HostTensor> out = s.run(Map.of("pixel_values", x), List.of("logits"));
 * }
 * }
 */
public final class InferenceSession implements AutoCloseable {
  /**
   * Session settings.
   *
   * @param threads intra-op threads
   * @param optimize whether ONNX Runtime may rewrite the graph (it fuses QDQ into integer kernels only then)
   */
  public record Config(int threads, boolean optimize) {
    public Config {
      if (threads <= 0) {
        throw new IllegalArgumentException("Threads must be positive, got " + threads);
      }
    }

    /** All cores, full optimisation. */
    public static Config defaults() {
      return new Config(Runtime.getRuntime().availableProcessors(), true);
    }

    /** These settings with {@code n} threads; 0 keeps the current count. */
    public Config withThreads(int n) {
      return n == 0 ? this : new Config(n, optimize);
    }
  }

  private static final OrtEnvironment ENV =
      OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, "vitq");

  /** What ONNX Runtime says when its allocator fails: "Failed to allocate memory for requested buffer of size N". */
  private static final Pattern ALLOCATION_FAILURE =
      Pattern.compile("(?i)failed to allocate memory(?:.*?of size (\\d+))?|bad_alloc|bad allocation");

  /** Receives the outputs of one run, valid only during the call. */
  @FunctionalInterface
  public interface OutputSink {
    void accept(Map<String, HostTensor> outputs) throws VitqException;
  }

  /** Output shapes of {@link #run(Map, List, OutputSink)}, by input shapes and requested outputs. */
  private record RunKey(Map<String, List<Long>> inputShapes, List<String> outputs) {}

  private final OrtSession session;
  private final String source;
  private final Map<RunKey, Map<String, long[]>> outputShapes = new HashMap<>();
  /** Where ONNX Runtime writes each streamed output, reused by every run; as large as the largest run needed. */
  private final Map<String, ByteBuffer> outputBuffers = new HashMap<>();
  private volatile boolean closed;

  private InferenceSession(OrtSession session, String source) {
    this.session = session;
    this.source = source;
  }

  /**
   * A session over an IR model.
   *
   * @throws VitqException if ONNX Runtime refuses the model
   */
  public static InferenceSession of(Model model, Config config) throws VitqException {
    // ONNX Runtime gets the model as a file with its weights beside it, not as bytes: for ViT-Base the bytes took
    // 346 MB of Java heap, and ONNX Runtime then held 460 MB against 335 MB after loading the file (measured).
    Path dir;
    try {
      dir = Files.createTempDirectory("vitq-session-");
    } catch (IOException e) {
      throw new VitqException("Cannot create a temporary folder for ONNX Runtime: " + e.getMessage() + ".", e);
    }
    try {
      Path file = dir.resolve("model.onnx");
      OnnxWriter.write(model, file, OnnxWriter.Placement.EXTERNAL);
      try (OrtSession.SessionOptions opts = options(config)) {
        return new InferenceSession(ENV.createSession(file.toString(), opts), "the model");
      } catch (OrtException e) {
        // The temporary file's name means nothing to the user, and is gone.
        throw failure("load", "the model", e, "Load model from " + file + " failed:");
      }
    } finally {
      AtomicFile.deleteQuietly(dir);
    }
  }

  /**
   * A session over a model file (its external data is read from beside it).
   *
   * @throws VitqException if ONNX Runtime refuses the file
   */
  public static InferenceSession of(Path file, Config config) throws VitqException {
    try (OrtSession.SessionOptions opts = options(config)) {
      return new InferenceSession(ENV.createSession(file.toString(), opts), file.getFileName().toString());
    } catch (OrtException e) {
      throw failure("load", file.toString(), e, null);
    }
  }

  /** How far ONNX Runtime optimises a graph before saving it. */
  public enum Level {
    /** Provider-independent rewrites only: constant folding, redundant node removal. */
    BASIC,
    /** BASIC, plus the recorded (not applied) QDQ fusions a minimal build replays on its CPU provider. */
    RUNTIME,
    /** BASIC plus CPU-provider fusions (QDQ into integer kernels, GELU, layer norm); no hardware-specific layout. */
    EXTENDED,
    /** EXTENDED plus this machine's layout (NCHWc): not portable. */
    ALL
  }

  /**
   * Writes {@code model} as ONNX Runtime saves it after its basic graph optimisations, which do not depend on the
   * execution provider (constant folding, redundant node removal; no kernel-specific fusions or layouts), so the file
   * runs on any phone's CPU, NNAPI or Core ML provider. {@code ortFormat} chooses ONNX Runtime's own ORT format
   * (what ONNX Runtime Mobile loads) over ONNX; the ONNX form lists the operators the ORT form holds.
   *
   * @param target where ONNX Runtime writes the file; the caller writes a temporary name and renames it
   * @throws VitqException if ONNX Runtime refuses the model or cannot write the file
   */
  public static void saveOptimized(Model model, Path target, boolean ortFormat, Level level) throws VitqException {
    Path dir;
    try {
      dir = Files.createTempDirectory("vitq-serialize-");
    } catch (IOException e) {
      throw new VitqException("Cannot create a temporary folder for ONNX Runtime: " + e.getMessage() + ".", e);
    }
    try {
      Path file = dir.resolve("model.onnx");
      OnnxWriter.write(model, file, OnnxWriter.Placement.AUTO);
      try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
        opts.setIntraOpNumThreads(1);
        opts.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
        opts.setOptimizedModelFilePath(target.toAbsolutePath().toString());
        opts.setOptimizationLevel(level == Level.BASIC ? OrtSession.SessionOptions.OptLevel.BASIC_OPT
            : level == Level.EXTENDED ? OrtSession.SessionOptions.OptLevel.EXTENDED_OPT
            : OrtSession.SessionOptions.OptLevel.ALL_OPT);
        if (level == Level.RUNTIME) {
          // Basic optimisations applied, the QDQ fusions into integer kernels only recorded: the phone's ONNX
          // Runtime replays them when its CPU provider runs the model, and skips them under NNAPI or Core ML.
          opts.addConfigEntry("optimization.minimal_build_optimizations", "save");
        }
        if (ortFormat) {
          opts.addConfigEntry("session.save_model_format", "ORT");
        }
        // Creating the session optimises the graph and writes it; nothing is run.
        try (OrtSession s = ENV.createSession(file.toString(), opts)) {
          s.getNumInputs();
        }
      } catch (OrtException e) {
        throw failure("load", "the model", e, "Load model from " + file + " failed:");
      }
    } finally {
      AtomicFile.deleteQuietly(dir);
    }
  }

  /**
   * The interface of the model this session runs, as an IR model without nodes: its inputs and outputs (types and
   * shapes, a dynamic dimension as a symbol) and its metadata. For files vitq cannot read as ONNX (the ORT format).
   *
   * @throws VitqException if ONNX Runtime cannot describe the model
   */
  public Model describe() throws VitqException {
    checkOpen();
    try {
      List<dev.vitq.models.Value> in = new ArrayList<>();
      for (var e : session.getInputInfo().entrySet()) {
        in.add(describe(e.getKey(), e.getValue()));
      }
      List<dev.vitq.models.Value> out = new ArrayList<>();
      for (var e : session.getOutputInfo().entrySet()) {
        out.add(describe(e.getKey(), e.getValue()));
      }
      List<dev.vitq.models.Metadata> meta = new ArrayList<>();
      new TreeMap<>(session.getMetadata().getCustomMetadata())
          .forEach((k, v) -> meta.add(new dev.vitq.models.Metadata(k, v)));
      dev.vitq.models.Graph g = new dev.vitq.models.Graph(source, List.of(), in, out, List.of(), List.of(),
          dev.vitq.models.Blob.EMPTY);
      return new Model(8, List.of(), session.getMetadata().getProducerName(), "", "", 0, "", meta, g,
          dev.vitq.models.Blob.EMPTY);
    } catch (OrtException e) {
      throw new VitqException("Cannot read the inputs and outputs of " + source + ": " + firstLine(e) + ".", e);
    }
  }

  private static dev.vitq.models.Value describe(String name, ai.onnxruntime.NodeInfo node) {
    if (!(node.getInfo() instanceof TensorInfo info)) {
      return dev.vitq.models.Value.of(name, null);
    }
    DType type = switch (info.type) {
      case FLOAT -> DType.FLOAT;
      case FLOAT16 -> DType.FLOAT16;
      case UINT8 -> DType.UINT8;
      case INT8 -> DType.INT8;
      case INT32 -> DType.INT32;
      case INT64 -> DType.INT64;
      default -> DType.FLOAT;
    };
    List<dev.vitq.models.Dim> dims = new ArrayList<>();
    String[] names = info.getDimensionNames();
    long[] shape = info.getShape();
    for (int i = 0; i < shape.length; i++) {
      dims.add(shape[i] >= 0 ? dev.vitq.models.Dim.of(shape[i])
          : dev.vitq.models.Dim.symbol(names != null && i < names.length && !names[i].isEmpty() ? names[i] : "d" + i));
    }
    return dev.vitq.models.Value.of(name, new dev.vitq.models.TensorType(type, dims));
  }

  private static OrtSession.SessionOptions options(Config config) throws OrtException {
    OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
    opts.setIntraOpNumThreads(config.threads());
    opts.setInterOpNumThreads(1);
    opts.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
    opts.setOptimizationLevel(config.optimize()
        ? OrtSession.SessionOptions.OptLevel.ALL_OPT
        : OrtSession.SessionOptions.OptLevel.NO_OPT);
    // Failures reach the user as one sentence from the exception; ONNX Runtime's own log line would repeat it.
    opts.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
    return opts;
  }

  private static String firstLine(OrtException e) {
    String m = String.valueOf(e.getMessage());
    int nl = m.indexOf('\n');
    return (nl < 0 ? m : m.substring(0, nl)).strip();
  }

  /**
   * The sentence for a failed load or run: an allocation failure says so (the command line adds what helps), anything
   * else quotes ONNX Runtime.
   */
  private static VitqException failure(String action, String what, OrtException e, String hide) {
    Matcher m = ALLOCATION_FAILURE.matcher(String.valueOf(e.getMessage()));
    if (m.find()) {
      String size = m.group(1) == null ? "" : String.format(Locale.ROOT, " (it asked for %,d bytes)",
          Long.parseLong(m.group(1)));
      return new VitqException("ONNX Runtime ran out of memory to " + action + " " + what + size + ".", e);
    }
    String said = hide == null ? firstLine(e) : firstLine(e).replace(hide, "");
    return new VitqException(action.equals("load") ? "ONNX Runtime cannot load " + what + ": " + said + "."
        : "ONNX Runtime failed to run " + what + ": " + said + ".", e);
  }

  /** Whether {@code failure} is ONNX Runtime failing to allocate memory, or was caused by it. */
  public static boolean outOfMemory(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof OrtException && ALLOCATION_FAILURE.matcher(String.valueOf(t.getMessage())).find()) {
        return true;
      }
    }
    return false;
  }

  public List<String> inputNames() {
    checkOpen();
    return new ArrayList<>(session.getInputNames());
  }

  public List<String> outputNames() {
    checkOpen();
    return new ArrayList<>(session.getOutputNames());
  }

  /** The element type ONNX Runtime expects for an input. */
  public DType inputType(String name) throws VitqException {
    checkOpen();
    try {
      TensorInfo info = (TensorInfo) session.getInputInfo().get(name).getInfo();
      return switch (info.type) {
        case FLOAT -> DType.FLOAT;
        case INT8 -> DType.INT8;
        case UINT8 -> DType.UINT8;
        case INT64 -> DType.INT64;
        default -> throw new VitqException("Input '" + name + "' of " + source + " has type " + info.type
            + ", which vitq does not feed.");
      };
    } catch (OrtException e) {
      throw new VitqException("Cannot read the inputs of " + source + ": " + firstLine(e) + ".", e);
    }
  }

  /**
   * Runs the model.
   *
   * @param inputs tensors by input name
   * @param outputs the outputs to compute
   * @return the outputs by name, in the order asked
   * @throws VitqException if ONNX Runtime fails (wrong shapes, say)
   */
  public Map<String, HostTensor> run(Map<String, HostTensor> inputs, List<String> outputs) throws VitqException {
    checkOpen();
    Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, HostTensor> e : inputs.entrySet()) {
        feeds.put(e.getKey(), toOrt(asExpected(e.getKey(), e.getValue())));
      }
      try (OrtSession.Result result = session.run(feeds, new LinkedHashSet<>(outputs))) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (String name : outputs) {
          OnnxValue v = result.get(name).orElseThrow(() -> new IllegalStateException("No output " + name));
          out.put(name, fromOrt((OnnxTensor) v));
        }
        return out;
      }
    } catch (OrtException e) {
      throw failure("run", source, e, null);
    } finally {
      feeds.values().forEach(OnnxTensor::close);
    }
  }

  /**
   * Runs the model and hands its float outputs to {@code sink} without copying them on the Java side: ONNX Runtime
   * writes every output straight into a buffer this session keeps and reuses for later runs, and {@code sink} reads
   * them there, so they are valid only during the call. Output shapes are learnt on the first run with given input
   * shapes; that run's outputs are copied into the buffers one at a time.
   *
   * @param inputs tensors by input name
   * @param outputs the float outputs to compute
   * @param sink receives the outputs by name, in the order asked
   * @throws VitqException if ONNX Runtime fails, or {@code sink} does
   */
  public void run(Map<String, HostTensor> inputs, List<String> outputs, OutputSink sink) throws VitqException {
    checkOpen();
    Map<String, List<Long>> shapes = new TreeMap<>();
    inputs.forEach((name, t) -> shapes.put(name, java.util.Arrays.stream(t.shape()).boxed().toList()));
    RunKey key = new RunKey(shapes, List.copyOf(outputs));
    Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
    Map<String, OnnxTensor> pinned = new LinkedHashMap<>();
    Map<String, HostTensor> out = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, HostTensor> e : inputs.entrySet()) {
        feeds.put(e.getKey(), toOrt(e.getValue()));
      }
      Map<String, long[]> known = outputShapes.get(key);
      if (known == null) {
        Map<String, long[]> learnt = new LinkedHashMap<>();
        try (OrtSession.Result result = session.run(feeds, new LinkedHashSet<>(outputs))) {
          for (String name : outputs) {
            OnnxTensor t = (OnnxTensor) result.get(name).orElseThrow(() -> new IllegalStateException("No " + name));
            if (t.getInfo().type != OnnxJavaType.FLOAT) {
              throw new IllegalArgumentException("Output '" + name + "' holds " + t.getInfo().type + ", not floats");
            }
            long[] shape = t.getInfo().getShape();
            ByteBuffer target = outputBuffer(name, shape);
            // One output copied at a time, so the Java heap never holds more than the largest.
            target.asFloatBuffer().put(t.getFloatBuffer());
            learnt.put(name, shape);
            out.put(name, new HostTensor(DType.FLOAT, shape, target));
          }
        }
        outputShapes.put(key, learnt);
      } else {
        for (String name : outputs) {
          long[] shape = known.get(name);
          ByteBuffer target = outputBuffer(name, shape);
          pinned.put(name, OnnxTensor.createTensor(ENV, target, shape, OnnxJavaType.FLOAT));
          out.put(name, new HostTensor(DType.FLOAT, shape, target));
        }
        session.run(feeds, java.util.Set.of(), pinned).close();
      }
    } catch (OrtException e) {
      throw failure("run", source, e, null);
    } finally {
      feeds.values().forEach(OnnxTensor::close);
      pinned.values().forEach(OnnxTensor::close);
    }
    sink.accept(out);
  }

  /** The kept buffer of an output, grown when {@code shape} needs more, as a little-endian view of exactly its size. */
  private ByteBuffer outputBuffer(String name, long[] shape) {
    int bytes = Math.toIntExact(HostTensor.elementCount(shape) * Float.BYTES);
    ByteBuffer b = outputBuffers.get(name);
    if (b == null || b.capacity() < bytes) {
      b = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
      outputBuffers.put(name, b);
    }
    return b.slice(0, bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * A float tensor for an input the model declares as float16 (a half-precision model, or one vitq quantized from
   * it, which keeps its interface), converted; any other tensor as it is.
   */
  private HostTensor asExpected(String name, HostTensor t) throws OrtException {
    if (t.dtype() != DType.FLOAT || !session.getInputInfo().containsKey(name)
        || ((TensorInfo) session.getInputInfo().get(name).getInfo()).type != OnnxJavaType.FLOAT16) {
      return t;
    }
    java.nio.FloatBuffer in = t.data().asFloatBuffer();
    ByteBuffer half = ByteBuffer.allocateDirect(in.remaining() * 2).order(ByteOrder.LITTLE_ENDIAN);
    while (in.hasRemaining()) {
      half.putShort(Float.floatToFloat16(in.get()));
    }
    half.flip();
    return new HostTensor(DType.FLOAT16, t.shape(), half);
  }

  private static OnnxTensor toOrt(HostTensor t) throws OrtException {
    ByteBuffer direct = t.data();
    if (!direct.isDirect()) {
      ByteBuffer copy = ByteBuffer.allocateDirect(direct.remaining()).order(ByteOrder.LITTLE_ENDIAN);
      copy.put(direct).flip();
      direct = copy;
    }
    OnnxJavaType type = switch (t.dtype()) {
      case FLOAT -> OnnxJavaType.FLOAT;
      case FLOAT16 -> OnnxJavaType.FLOAT16;
      case INT8 -> OnnxJavaType.INT8;
      case UINT8 -> OnnxJavaType.UINT8;
      case INT64 -> OnnxJavaType.INT64;
      default -> throw new IllegalArgumentException("Cannot feed " + t.dtype());
    };
    return OnnxTensor.createTensor(ENV, direct, t.shape(), type);
  }

  private static HostTensor fromOrt(OnnxTensor t) {
    TensorInfo info = t.getInfo();
    if (info.type == OnnxJavaType.FLOAT16) {
      // Half-precision outputs reach Java as floats: every reader of a result computes in float.
      java.nio.FloatBuffer f = t.getFloatBuffer();
      ByteBuffer b = ByteBuffer.allocateDirect(f.remaining() * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
      b.asFloatBuffer().put(f);
      return new HostTensor(DType.FLOAT, info.getShape(), b);
    }
    DType dtype = switch (info.type) {
      case FLOAT -> DType.FLOAT;
      case INT8 -> DType.INT8;
      case UINT8 -> DType.UINT8;
      case INT64 -> DType.INT64;
      default -> throw new IllegalStateException("Unexpected output type " + info.type);
    };
    // getByteBuffer already returns a copy owned by the caller: no second copy.
    return new HostTensor(dtype, info.getShape(), t.getByteBuffer().order(ByteOrder.LITTLE_ENDIAN));
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("This inference session is closed.");
    }
  }

  /** Releases the native session; safe to call twice. */
  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      outputBuffers.clear();
      try {
        session.close();
      } catch (OrtException e) {
        throw new IllegalStateException("ONNX Runtime failed to close a session", e);
      }
    }
  }
}
