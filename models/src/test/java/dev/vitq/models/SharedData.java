package dev.vitq.models;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The project's real material in {@code ../shared}: tests that need it call {@link #require} and are skipped, with
 * a message saying why, where it is absent.
 */
public final class SharedData {
  private SharedData() {}

  /** The shared folder, or null where there is none. */
  public static Path root() {
    String configured = System.getProperty("vitq.shared");
    for (String candidate : new String[] {configured, "../shared", "../../shared"}) {
      if (candidate != null && Files.isDirectory(Path.of(candidate))) {
        return Path.of(candidate).toAbsolutePath().normalize();
      }
    }
    return null;
  }

  /** A file or folder under {@code ../shared}; skips the calling test when it is not there. */
  public static Path require(String relative) {
    Path root = root();
    assumeTrue(root != null, "../shared is absent: skipping a test that needs the project's real material");
    Path p = root.resolve(relative);
    assumeTrue(Files.exists(p), "../shared/" + relative + " is absent: skipping");
    return p;
  }

  /** The trained CIFAR-10 ViT. */
  public static Path vitTiny() {
    return require("models/vit-tiny-cifar10.onnx");
  }
}
