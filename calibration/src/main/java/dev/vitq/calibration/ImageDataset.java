package dev.vitq.calibration;

import dev.vitq.models.VitqException;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * JPEG and PNG images from a folder: either one sub-folder per class (sorted names give the class indices, as in
 * ImageFolder) or a flat folder of unlabelled images for calibration. Images are decoded batch by batch, so memory
 * does not grow with the number of images; unreadable files are counted and skipped.
 *
 * {@snippet lang="java" :
 * ImageDataset data = ImageDataset.open(Path.of("val"), Preprocessing.fromMetadata(json));
 * data.forEachBatch(32, Progress.NONE, batch -> ...);
 * }
 */
public final class ImageDataset {
  /**
   * One image file and its class.
   *
   * @param file the image
   * @param label its class index, or -1
   */
  public record Entry(Path file, int label) {}

  /** Receives one batch at a time. */
  @FunctionalInterface
  public interface BatchConsumer {
    void accept(ImageBatch batch) throws VitqException;
  }

  private final Path root;
  private final List<String> classes;
  private final List<Entry> entries;
  private final Preprocessing pre;
  private final AtomicInteger skipped = new AtomicInteger();

  private ImageDataset(Path root, List<String> classes, List<Entry> entries, Preprocessing pre) {
    this.root = root;
    this.classes = List.copyOf(classes);
    this.entries = List.copyOf(entries);
    this.pre = pre;
  }

  /**
   * Lists the images of a folder.
   *
   * @throws VitqException if the folder does not exist or holds no JPEG or PNG image
   */
  public static ImageDataset open(Path dir, Preprocessing pre) throws VitqException {
    if (!Files.isDirectory(dir)) {
      throw new VitqException("Image folder " + dir + " does not exist or is not a folder.");
    }
    List<String> classes = new ArrayList<>();
    List<Entry> entries = new ArrayList<>();
    try {
      List<Path> subdirs;
      try (Stream<Path> s = Files.list(dir)) {
        subdirs = s.filter(Files::isDirectory).filter(p -> !p.getFileName().toString().startsWith(".")).sorted()
            .toList();
      }
      if (subdirs.isEmpty()) {
        images(dir).forEach(f -> entries.add(new Entry(f, -1)));
      } else {
        for (Path sub : subdirs) {
          int label = classes.size();
          classes.add(sub.getFileName().toString());
          images(sub).forEach(f -> entries.add(new Entry(f, label)));
        }
      }
    } catch (IOException e) {
      throw new VitqException("Cannot list image folder " + dir + ": " + e.getMessage() + ".", e);
    }
    if (entries.isEmpty()) {
      throw new VitqException("Image folder " + dir + " holds no JPEG or PNG images"
          + (classes.isEmpty() ? "." : " in its " + classes.size() + " class folders."));
    }
    return new ImageDataset(dir, classes, entries, pre);
  }

  private static List<Path> images(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(Files::isRegularFile).filter(ImageDataset::isImage).sorted().toList();
    }
  }

  private static boolean isImage(Path p) {
    String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
    return !n.startsWith(".") && (n.endsWith(".jpg") || n.endsWith(".jpeg") || n.endsWith(".png"));
  }

  /**
   * A deterministic, class-balanced-in-expectation sample of {@code n} images in seeded random order (all of them,
   * shuffled, when there are fewer), so any slice of it mixes the classes.
   */
  public ImageDataset sample(int n, long seed) {
    List<Entry> shuffled = new ArrayList<>(entries);
    Collections.shuffle(shuffled, new Random(seed));
    return new ImageDataset(root, classes, shuffled.subList(0, Math.min(n, shuffled.size())), pre);
  }

  /** Images {@code from} (inclusive) to {@code to} (exclusive) in dataset order. */
  public ImageDataset slice(int from, int to) {
    return new ImageDataset(root, classes, entries.subList(from, Math.min(to, entries.size())), pre);
  }

  /** Class names in index order; empty for a flat folder. */
  public List<String> classes() {
    return classes;
  }

  public List<Entry> entries() {
    return entries;
  }

  public int size() {
    return entries.size();
  }

  public Path root() {
    return root;
  }

  public Preprocessing preprocessing() {
    return pre;
  }

  /** Files skipped as unreadable so far. */
  public int skipped() {
    return skipped.get();
  }

  /**
   * Decodes the images in order, {@code batchSize} at a time, and hands each batch over.
   *
   * @throws VitqException if an image has the wrong size for the model and no resize was asked for, if none could
   *     be read, or if the consumer throws
   */
  public void forEachBatch(int batchSize, Progress progress, BatchConsumer consumer) throws VitqException {
    if (batchSize <= 0) {
      throw new IllegalArgumentException("Batch size must be positive, got " + batchSize);
    }
    int readable = 0;
    int plane = pre.height() * pre.width();
    try (Progress.Task task = progress.start("images", entries.size())) {
      for (int start = 0; start < entries.size(); start += batchSize) {
        List<Entry> chunk = entries.subList(start, Math.min(start + batchSize, entries.size()));
        float[][] decoded = new float[chunk.size()][];
        VitqException[] failure = new VitqException[1];
        // Decode in parallel into fixed slots: the batch's order, and so the output, stays deterministic.
        IntStream.range(0, chunk.size()).parallel().forEach(i -> {
          try {
            decoded[i] = decode(chunk.get(i).file());
          } catch (VitqException e) {
            synchronized (failure) {
              if (failure[0] == null) {
                failure[0] = e;
              }
            }
          }
        });
        if (failure[0] != null) {
          throw failure[0];
        }
        int count = 0;
        for (float[] d : decoded) {
          count += d == null ? 0 : 1;
        }
        skipped.addAndGet(chunk.size() - count);
        task.advance(chunk.size());
        if (count == 0) {
          continue;
        }
        float[] pixels = new float[count * 3 * plane];
        int[] labels = new int[count];
        List<Path> files = new ArrayList<>(count);
        int k = 0;
        for (int i = 0; i < chunk.size(); i++) {
          if (decoded[i] != null) {
            System.arraycopy(decoded[i], 0, pixels, k * 3 * plane, 3 * plane);
            labels[k] = chunk.get(i).label();
            files.add(chunk.get(i).file());
            k++;
          }
        }
        readable += count;
        consumer.accept(new ImageBatch(pixels, count, pre.height(), pre.width(), labels, files));
      }
    }
    if (readable == 0) {
      throw new VitqException("None of the " + entries.size() + " images in " + root + " could be read.");
    }
  }

  /** One image as normalised CHW floats, or null when it cannot be decoded. */
  private float[] decode(Path file) throws VitqException {
    BufferedImage img;
    try {
      img = ImageIO.read(file.toFile());
    } catch (IOException | RuntimeException e) {
      return null;
    }
    if (img == null) {
      return null;
    }
    int w = img.getWidth();
    int h = img.getHeight();
    int[] rgb = img.getRGB(0, 0, w, h, null, 0, w);
    if (pre.resize() > 0) {
      return normalise(ImageResize.resizeAndCrop(rgb, w, h, pre.resize(), pre.width(), pre.height()), pre.width(),
          pre.height());
    }
    if (w != pre.width() || h != pre.height()) {
      throw new VitqException("Image " + file + " is " + w + "x" + h + " but the model takes " + pre.width() + "x"
          + pre.height() + "; pass --resize N to resize the shorter side to N and centre-crop.");
    }
    return normalise(rgb, w, h);
  }

  private float[] normalise(int[] rgb, int w, int h) {
    int plane = w * h;
    float[] out = new float[3 * plane];
    double[] mean = pre.mean();
    double[] std = pre.std();
    double scale = pre.scale();
    for (int i = 0; i < plane; i++) {
      int p = rgb[i];
      out[i] = (float) ((((p >> 16) & 0xff) * scale - mean[0]) / std[0]);
      out[plane + i] = (float) ((((p >> 8) & 0xff) * scale - mean[1]) / std[1]);
      out[2 * plane + i] = (float) (((p & 0xff) * scale - mean[2]) / std[2]);
    }
    return out;
  }
}
