package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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

  /**
   * The built ViT {@code vit} with its softmaxes turned into sigmoids: a vision model, but not a ViT vitq recognises.
   */
  static Path notAVit(Path vit, Path dir) throws Exception {
    Model m = OnnxReader.read(vit);
    List<Node> nodes = m.graph().nodes().stream().map(n -> n.is("Softmax")
        ? new Node(n.name(), "Sigmoid", "", n.inputs(), n.outputs(), List.of(), n.extras()) : n).toList();
    Path path = dir.resolve("sigmoid-attention.onnx");
    OnnxWriter.write(m.withGraph(m.graph().withNodes(nodes)), path);
    return path;
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
