package dev.vitq.maven;

import dev.vitq.api.PreprocessFlags;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Method;
import dev.vitq.quantizer.Scheme;
import java.io.File;
import java.nio.file.Path;
import org.apache.maven.plugin.AbstractMojo;
import org.apache.maven.plugin.MojoFailureException;
import org.apache.maven.plugins.annotations.Parameter;

/**
 * What every vitq goal shares: skipping, ONNX Runtime threads and the preprocessing overrides, named as the command
 * line names them. A goal's failure is one sentence, as on the command line.
 */
abstract class VitqMojo extends AbstractMojo {
  /** Skip this goal (also {@code -Dvitq.skip}). */
  @Parameter(property = "vitq.skip", defaultValue = "false")
  boolean skip;

  /** ONNX Runtime threads (0: its choice). */
  @Parameter(property = "vitq.threads", defaultValue = "0")
  int threads;

  /** Images per run. */
  @Parameter(property = "vitq.batch", defaultValue = "50")
  int batch;

  /** Model input size; default from the model. */
  @Parameter
  Integer size;

  /** Per-channel mean after scaling pixels to [0, 1], as "R,G,B"; default from the model. */
  @Parameter
  String mean;

  /** Per-channel standard deviation, as "R,G,B"; default from the model. */
  @Parameter
  String std;

  /** Resize the shorter image side to this, then centre-crop; default: images already have the input size. */
  @Parameter
  Integer resize;

  /** A folder for report.html; none by default. */
  @Parameter(property = "vitq.report")
  File report;

  @Override
  public final void execute() throws MojoFailureException {
    if (skip) {
      getLog().info("vitq: skipped");
      return;
    }
    try {
      run();
    } catch (VitqException | IllegalArgumentException e) {
      // One sentence, as the command line prints it; Maven adds the goal's name.
      throw new MojoFailureException(e.getMessage(), e);
    }
  }

  abstract void run() throws VitqException, MojoFailureException;

  PreprocessFlags preprocess() throws VitqException {
    return new PreprocessFlags(size, triple("mean", mean), triple("std", std), resize);
  }

  static Path path(File f) {
    return f == null ? null : f.toPath();
  }

  static Scheme scheme(String name) {
    return Scheme.ofCliName(name);
  }

  static Method method(String name) {
    return Method.ofCliName(name);
  }

  private static double[] triple(String name, String text) throws VitqException {
    if (text == null) {
      return null;
    }
    String[] parts = text.split(",");
    if (parts.length != 3) {
      throw new VitqException("<" + name + "> takes three numbers R,G,B, got '" + text + "'.");
    }
    double[] out = new double[3];
    for (int i = 0; i < 3; i++) {
      try {
        out[i] = Double.parseDouble(parts[i].trim());
      } catch (NumberFormatException e) {
        throw new VitqException("<" + name + "> takes three numbers R,G,B, got '" + text + "'.");
      }
    }
    return out;
  }
}
