package dev.vitq.converter.check;

import dev.vitq.models.VitqException;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The ONNX Runtime execution providers {@code vitq check} knows, named as on the command line. */
public enum ExecutionProvider {
  /** Qualcomm QNN, HTP (NPU) backend. */
  QNN("qnn", "QNN (Qualcomm HTP)", true),
  /** Android NNAPI. */
  NNAPI("nnapi", "NNAPI (Android)", true),
  /** Apple CoreML, ML Program format. */
  COREML("coreml", "CoreML (ML Program)", true),
  /** XNNPACK, on the CPU. */
  XNNPACK("xnnpack", "XNNPACK (CPU)", false);

  private final String cliName;
  private final String label;
  private final boolean copiesAtCuts;

  ExecutionProvider(String cliName, String label, boolean copiesAtCuts) {
    this.cliName = cliName;
    this.label = label;
    this.copiesAtCuts = copiesAtCuts;
  }

  /** The name {@code --ep} takes. */
  public String cliName() {
    return cliName;
  }

  /** A human name, with the backend. */
  public String label() {
    return label;
  }

  /**
   * Whether a cut between the provider and the CPU costs a copy between memories (true for accelerators; XNNPACK
   * runs on the CPU, so many partitions cost it only scheduling).
   */
  public boolean copiesAtCuts() {
    return copiesAtCuts;
  }

  /** The names {@code --ep} takes, comma-separated. */
  public static String names() {
    return Arrays.stream(values()).map(ExecutionProvider::cliName).collect(Collectors.joining(", "));
  }

  /**
   * The provider of a command-line name.
   *
   * @throws VitqException if no provider has that name
   */
  public static ExecutionProvider ofCliName(String name) throws VitqException {
    String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
    for (ExecutionProvider ep : values()) {
      if (ep.cliName.equals(n)) {
        return ep;
      }
    }
    throw new VitqException("Unknown execution provider '" + name + "'; vitq check knows " + names() + ".");
  }
}
