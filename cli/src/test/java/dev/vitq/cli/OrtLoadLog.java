package dev.vitq.cli;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What ONNX Runtime logs at warning level while it loads model files, as an app loading them would see it. ORT logs
 * from native code straight to the process's stderr, which Java cannot capture in-process, so {@link #of} loads the
 * files in a child JVM ({@link #main}) and reads its stderr, each file's lines after a marker naming it.
 */
final class OrtLoadLog {
  private static final String READY = "@@ort-ready";
  private static final String FILE = "@@ort-file ";

  private OrtLoadLog() {}

  /**
   * The lines ONNX Runtime printed while loading each file (ONNX or ORT format), by file, in order.
   *
   * @throws IllegalStateException if the child process fails
   */
  static Map<Path, List<String>> of(List<Path> files) throws IOException, InterruptedException {
    String javaBin = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new ArrayList<>(List.of(javaBin, "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), OrtLoadLog.class.getName()));
    files.forEach(f -> command.add(f.toString()));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    List<String> lines = new ArrayList<>();
    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = r.readLine(); line != null; line = r.readLine()) {
        lines.add(line);
      }
    }
    if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IllegalStateException("The loading process failed: " + String.join("\n", lines));
    }
    Map<Path, List<String>> byFile = new LinkedHashMap<>();
    List<String> current = null;
    boolean ready = false;
    for (String line : lines) {
      if (line.equals(READY)) {
        ready = true;
      } else if (line.startsWith(FILE)) {
        current = new ArrayList<>();
        byFile.put(Path.of(line.substring(FILE.length())), current);
      } else if (current != null) {
        current.add(line);
      } else if (ready) {
        throw new IllegalStateException("A line before the first file: " + line);
      }
    }
    if (byFile.size() != files.size()) {
      throw new IllegalStateException("Loaded " + byFile.keySet() + " of " + files + ": " + String.join("\n", lines));
    }
    return byFile;
  }

  /** Loads each file named in {@code args} with ONNX Runtime logging at warning level, a marker line before each. */
  public static void main(String[] args) throws Exception {
    // What the JVM says while ONNX Runtime's native library loads comes before the ready marker and is not counted.
    OrtEnvironment env = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "load-log");
    System.err.println(READY);
    for (String file : args) {
      System.err.println(FILE + file);
      try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
        opts.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING);
        opts.setIntraOpNumThreads(1);
        try (OrtSession s = env.createSession(file, opts)) {
          System.err.flush();
        }
      }
    }
    System.err.flush();
  }
}
