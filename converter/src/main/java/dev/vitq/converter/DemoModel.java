package dev.vitq.converter;

import dev.vitq.models.Model;
import dev.vitq.models.VitqException;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * The embedded default of {@code vitq quantize} when no model is given: a DeiT-Tiny-shaped ViT for 32x32 images
 * (the shape of the shared CIFAR-10 model) with seeded weights, and seeded synthetic calibration images. It shows
 * the whole pipeline on a fresh machine without any download.
 */
public final class DemoModel {
  public static final String NAME = "demo-vit-tiny-32";
  static final int IMAGES = 64;
  private static final int SIZE = 32;

  private DemoModel() {}

  /** The demo ViT, its weights drawn from {@code seed}. */
  public static Model model(long seed) {
    return VitBuilder.build(VitConfig.tiny(SIZE, 4, 10), Spelling.TIMM_17, seed);
  }

  /**
   * Writes {@value #IMAGES} synthetic PNG images (smooth colour fields with noise) into a new temporary folder.
   *
   * @throws VitqException if the temporary folder cannot be written
   */
  public static Path calibrationImages(long seed) throws VitqException {
    try {
      Path dir = Files.createTempDirectory("vitq-demo-calib");
      Random rng = new Random(seed);
      for (int n = 0; n < IMAGES; n++) {
        BufferedImage img = new BufferedImage(SIZE, SIZE, BufferedImage.TYPE_INT_RGB);
        double[] f = new double[9];
        for (int k = 0; k < f.length; k++) {
          f[k] = rng.nextDouble() * 0.5;
        }
        for (int y = 0; y < SIZE; y++) {
          for (int x = 0; x < SIZE; x++) {
            int rgb = 0;
            for (int c = 0; c < 3; c++) {
              double v = 128 + 90 * Math.sin(f[3 * c] * x + f[3 * c + 1] * y + 6 * f[3 * c + 2])
                  + 20 * rng.nextGaussian();
              rgb = (rgb << 8) | (int) Math.max(0, Math.min(255, v));
            }
            img.setRGB(x, y, rgb);
          }
        }
        ImageIO.write(img, "png", dir.resolve(String.format("synthetic-%03d.png", n)).toFile());
      }
      return dir;
    } catch (IOException e) {
      throw new VitqException("Cannot write the demo's calibration images: " + e.getMessage() + ".", e);
    }
  }

  /** Removes a folder written by {@link #calibrationImages}. */
  public static void delete(Path dir) {
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.toList()) {
        Files.deleteIfExists(f);
      }
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      // A leftover temporary folder is harmless; the result is already written.
    }
  }
}
