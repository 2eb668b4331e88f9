package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;

/** The small built model and synthetic images the command-line tests run on. */
final class CliFixtures {
  private CliFixtures() {}

  /** A 32x32 timm-17 ViT (patch 8, width 32, 2 heads, 3 classes, seed 5) of {@code depth} blocks in {@code dir}. */
  static Path model(Path dir, int depth) {
    Path model = dir.resolve("vit.onnx");
    CliRun built = CliRun.of("models", "build", "--image-size", "32", "--patch", "8", "--width", "32", "--depth",
        "" + depth, "--heads", "2", "--classes", "3", "--spelling", "timm-17", "--seed", "5", "-o", model.toString());
    assertEquals(0, built.exitCode(), built.err());
    return model;
  }

  /** {@code perClass} random images of {@code size} pixels in each of {@code classes} class folders. */
  static Path images(Path dir, int size, int classes, int perClass, long seed) throws Exception {
    Random rng = new Random(seed);
    for (int c = 0; c < classes; c++) {
      Path sub = dir.resolve("class" + c);
      Files.createDirectories(sub);
      for (int i = 0; i < perClass; i++) {
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < size; y++) {
          for (int x = 0; x < size; x++) {
            img.setRGB(x, y, rng.nextInt(1 << 24));
          }
        }
        ImageIO.write(img, "png", sub.resolve("img" + i + ".png").toFile());
      }
    }
    return dir;
  }
}
