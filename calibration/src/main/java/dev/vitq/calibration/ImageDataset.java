package dev.vitq.calibration;

import dev.vitq.models.VitqException;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * JPEG and PNG images from a folder: either one sub-folder per class (sorted names give the class indices, as in
 * ImageFolder) or a flat folder of unlabelled images for calibration. Images are decoded batch by batch, so memory
 * does not grow with the number of images. Each file's header is read before its pixels: files whose header cannot be
 * read, and images of more than {@link #MAX_PIXELS} pixels, are skipped without decoding, as are files that fail to
 * decode; a pass that skipped any logs one sentence saying how many and why (logger {@code dev.vitq}, warning).
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

  /**
   * An image left out of a pass.
   *
   * @param file the image
   * @param tooLarge whether its header declares more than {@link #MAX_PIXELS} pixels (else it is unreadable)
   * @param width its declared width, or 0 when unreadable
   * @param height its declared height, or 0 when unreadable
   */
  public record Skip(Path file, boolean tooLarge, int width, int height) {}

  /** Receives one batch at a time. */
  @FunctionalInterface
  public interface BatchConsumer {
    void accept(ImageBatch batch) throws VitqException;
  }

  /**
   * Images with more pixels are skipped: decoding takes up to 8 bytes a pixel (the decoded image and its packed RGB
   * copy), 400 MB per decoding thread at 50 megapixels, and a photo that large is no better for calibrating a
   * 224-pixel model.
   */
  public static final long MAX_PIXELS = 50_000_000L;

  private static final System.Logger LOG = System.getLogger("dev.vitq");

  private final Path root;
  private final List<String> classes;
  private final List<Entry> entries;
  private final Preprocessing pre;
  private volatile List<Skip> skips = List.of();

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

  /** Files skipped (unreadable, or past {@link #MAX_PIXELS}) in the last pass over the images. */
  public int skipped() {
    return skips.size();
  }

  /** The files skipped in the last pass, in dataset order. */
  public List<Skip> skips() {
    return skips;
  }

  /** One sentence on the images the last pass skipped and why, or an empty string when it skipped none. */
  public String skipSummary() {
    return skips.isEmpty() ? "" : "Skipped " + skips.size() + " of " + entries.size() + " images in " + root + ": "
        + reasons(skips) + ".";
  }

  /** "2 unreadable (a.jpg, b.png), 1 past the 50-megapixel limit (c.png, 20000x20000)". */
  private static String reasons(List<Skip> skips) {
    List<Skip> unreadable = skips.stream().filter(s -> !s.tooLarge()).toList();
    List<Skip> large = skips.stream().filter(Skip::tooLarge).toList();
    List<String> parts = new ArrayList<>();
    if (!unreadable.isEmpty()) {
      parts.add(unreadable.size() + " unreadable (" + examples(unreadable) + ")");
    }
    if (!large.isEmpty()) {
      parts.add(large.size() + " past the " + MAX_PIXELS / 1_000_000 + "-megapixel limit (" + examples(large) + ")");
    }
    return String.join(", ", parts);
  }

  private static String examples(List<Skip> skips) {
    List<String> names = skips.stream().limit(3).map(s -> s.file().getFileName() + (s.tooLarge() ? " is " + s.width()
        + "x" + s.height() : "")).toList();
    return String.join(", ", names) + (skips.size() > names.size() ? " and " + (skips.size() - names.size())
        + " more" : "");
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
    List<Skip> skipped = new ArrayList<>();
    try (Progress.Task task = progress.start("images", entries.size())) {
      for (int start = 0; start < entries.size(); start += batchSize) {
        List<Entry> chunk = entries.subList(start, Math.min(start + batchSize, entries.size()));
        float[][] decoded = new float[chunk.size()][];
        Skip[] skip = new Skip[chunk.size()];
        VitqException[] failure = new VitqException[1];
        // Decode in parallel into fixed slots: the batch's order, and so the output, stays deterministic.
        IntStream.range(0, chunk.size()).parallel().forEach(i -> {
          try {
            Path file = chunk.get(i).file();
            int[] size = new int[2];
            decoded[i] = decode(file, size);
            if (decoded[i] == null) {
              skip[i] = new Skip(file, size[0] > 0, size[0], size[1]);
            }
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
        for (int i = 0; i < chunk.size(); i++) {
          if (decoded[i] != null) {
            count++;
          } else {
            skipped.add(skip[i]);
          }
        }
        skips = List.copyOf(skipped);
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
      throw new VitqException("None of the " + entries.size() + " images in " + root + " could be used: "
          + reasons(skipped) + ".");
    }
    if (!skipped.isEmpty()) {
      LOG.log(System.Logger.Level.WARNING, skipSummary());
    }
  }

  /**
   * One image as normalised CHW floats, or null when it is skipped: its header is read first, and an image past
   * {@link #MAX_PIXELS} is not decoded (its declared width and height go into {@code size}).
   */
  private float[] decode(Path file, int[] size) throws VitqException {
    BufferedImage img;
    try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
      Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
      if (readers == null || !readers.hasNext()) {
        return null;
      }
      ImageReader reader = readers.next();
      try {
        reader.setInput(in, true, true);
        int w = reader.getWidth(0);
        int h = reader.getHeight(0);
        if ((long) w * h > MAX_PIXELS) {
          size[0] = w;
          size[1] = h;
          return null;
        }
        img = reader.read(0);
      } finally {
        reader.dispose();
      }
    } catch (IOException | RuntimeException e) {
      return null;
    }
    if (img == null) {
      return null;
    }
    int w = img.getWidth();
    int h = img.getHeight();
    int[] rgb = packedRgb(img);
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

  /**
   * The pixels as packed 8-bit RGB, as PIL's {@code convert("RGB")} gives them: a grey image repeats its level in
   * every channel. ({@code getRGB} would map grey through Java's linear-grey colour space, brightening mid-greys:
   * level 128 came out as 188.) Alpha is dropped.
   */
  static int[] packedRgb(BufferedImage img) {
    int w = img.getWidth();
    int h = img.getHeight();
    ColorModel cm = img.getColorModel();
    if (cm.getColorSpace().getType() == ColorSpace.TYPE_GRAY && !(cm instanceof IndexColorModel)) {
      int[] levels = img.getRaster().getSamples(0, 0, w, h, 0, (int[]) null);
      int max = (1 << cm.getComponentSize(0)) - 1;
      for (int i = 0; i < levels.length; i++) {
        int v = max == 255 ? levels[i] : (int) Math.round(levels[i] * 255.0 / max);
        levels[i] = v << 16 | v << 8 | v;
      }
      return levels;
    }
    return img.getRGB(0, 0, w, h, null, 0, w);
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
