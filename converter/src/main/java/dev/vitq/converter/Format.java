package dev.vitq.converter;

import dev.vitq.models.VitqException;

/** The file formats a deployable model is written in ({@code --format}). */
public enum Format {
  /** ONNX, as vitq writes it: what servers and desktop ONNX Runtime load. */
  ONNX,
  /** ONNX Runtime's ORT format, after its portable basic optimisations: what ONNX Runtime Mobile loads. */
  ORT,
  /** Both files. */
  BOTH;

  /** The name on the command line. */
  public String cliName() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * The format of that command-line name.
   *
   * @throws VitqException if there is none
   */
  public static Format parse(String name) throws VitqException {
    for (Format f : values()) {
      if (f.cliName().equals(name)) {
        return f;
      }
    }
    throw new VitqException("--format must be onnx, ort or both, got '" + name + "'.");
  }
}
