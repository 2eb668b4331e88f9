package dev.vitq.calibration;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.onnx.OnnxWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An ONNX Runtime session over an IR model or a model file, closed with try-with-resources. Inputs and outputs
 * cross as {@link HostTensor}s; every native tensor lives only inside {@link #run}.
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

  private final OrtSession session;
  private final String source;
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
    byte[] bytes = OnnxWriter.toBytes(model);
    try (OrtSession.SessionOptions opts = options(config)) {
      return new InferenceSession(ENV.createSession(bytes, opts), "the model");
    } catch (OrtException e) {
      throw new VitqException("ONNX Runtime cannot load the model: " + firstLine(e) + ".", e);
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
      throw new VitqException("ONNX Runtime cannot load " + file + ": " + firstLine(e) + ".", e);
    }
  }

  private static OrtSession.SessionOptions options(Config config) throws OrtException {
    OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
    opts.setIntraOpNumThreads(config.threads());
    opts.setInterOpNumThreads(1);
    opts.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
    opts.setOptimizationLevel(config.optimize()
        ? OrtSession.SessionOptions.OptLevel.ALL_OPT
        : OrtSession.SessionOptions.OptLevel.NO_OPT);
    opts.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
    return opts;
  }

  private static String firstLine(OrtException e) {
    String m = String.valueOf(e.getMessage());
    int nl = m.indexOf('\n');
    return (nl < 0 ? m : m.substring(0, nl)).strip();
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
        feeds.put(e.getKey(), toOrt(e.getValue()));
      }
      try (OrtSession.Result result = session.run(feeds, new java.util.LinkedHashSet<>(outputs))) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (String name : outputs) {
          OnnxValue v = result.get(name).orElseThrow(() -> new IllegalStateException("No output " + name));
          out.put(name, fromOrt((OnnxTensor) v));
        }
        return out;
      }
    } catch (OrtException e) {
      throw new VitqException("ONNX Runtime failed to run " + source + ": " + firstLine(e) + ".", e);
    } finally {
      feeds.values().forEach(OnnxTensor::close);
    }
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
      case INT8 -> OnnxJavaType.INT8;
      case UINT8 -> OnnxJavaType.UINT8;
      case INT64 -> OnnxJavaType.INT64;
      default -> throw new IllegalArgumentException("Cannot feed " + t.dtype());
    };
    return OnnxTensor.createTensor(ENV, direct, t.shape(), type);
  }

  private static HostTensor fromOrt(OnnxTensor t) {
    TensorInfo info = t.getInfo();
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
      try {
        session.close();
      } catch (OrtException e) {
        throw new IllegalStateException("ONNX Runtime failed to close a session", e);
      }
    }
  }
}
