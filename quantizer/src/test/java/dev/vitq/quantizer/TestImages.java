package dev.vitq.quantizer;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;

/** Synthetic 32x32 calibration images for the quantizer's tests: a seeded tint per image, noise and gradients. */
public final class TestImages {
  private TestImages() {}

  /** Writes {@code count} PNG images {@code img-N.png} into {@code dir}, the same ones every time. */
  public static void write(Path dir, int count) throws IOException {
    Random rng = new Random(5);
    for (int n = 0; n < count; n++) {
      BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
      int tint = rng.nextInt(0xffffff);
      for (int y = 0; y < 32; y++) {
        for (int x = 0; x < 32; x++) {
          img.setRGB(x, y, (tint + rng.nextInt(0x404040) + x * 0x030000 + y * 0x000300) & 0xffffff);
        }
      }
      ImageIO.write(img, "png", dir.resolve("img-" + n + ".png").toFile());
    }
  }
}
