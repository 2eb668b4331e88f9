package dev.vitq.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vitq.models.VitqException;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Listing, decoding, normalising and skipping images, on files written by the test. */
class ImageDatasetTest {
  private static final double[] MEAN = {0.5, 0.4, 0.3};
  private static final double[] STD = {0.25, 0.2, 0.1};

  private static Preprocessing pre(int height, int width, int resize) {
    return new Preprocessing(height, width, 1 / 255.0, MEAN, STD, resize);
  }

  /** What preprocessing makes of 8-bit level {@code v} in channel {@code c}. */
  private static float normalised(int v, int c) {
    return (float) ((v * (1 / 255.0) - MEAN[c]) / STD[c]);
  }

  private static int rgb(int r, int g, int b) {
    return r << 16 | g << 8 | b;
  }

  private static BufferedImage image(int w, int h, int[] rgb) {
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    img.setRGB(0, 0, w, h, rgb, 0, w);
    return img;
  }

  private static Path write(BufferedImage img, String format, Path file) throws Exception {
    Files.createDirectories(file.getParent());
    assertTrue(ImageIO.write(img, format, file.toFile()), "no " + format + " writer");
    return file;
  }

  private static byte[] png(BufferedImage img) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ImageIO.write(img, "png", out);
    return out.toByteArray();
  }

  /** A valid PNG whose header declares {@code w x h} pixels; its pixel data is a 2x2 image's. */
  static byte[] declaringSize(int w, int h) throws Exception {
    byte[] png = png(image(2, 2, new int[4]));
    ByteBuffer b = ByteBuffer.wrap(png);
    // Signature (8 bytes), then IHDR: length (4), type (4), width (4), height (4), ..., CRC of type and data.
    assertEquals("IHDR", new String(png, 12, 4, java.nio.charset.StandardCharsets.US_ASCII));
    b.putInt(16, w);
    b.putInt(20, h);
    CRC32 crc = new CRC32();
    crc.update(png, 12, 4 + 13);
    b.putInt(29, (int) crc.getValue());
    return png;
  }

  private static List<ImageBatch> batches(ImageDataset data, int size) throws VitqException {
    List<ImageBatch> out = new ArrayList<>();
    data.forEachBatch(size, Progress.NONE, out::add);
    return out;
  }

  @Test
  void pngPixelsArriveExactlyNormalisedInChannelPlanes(@TempDir Path dir) throws Exception {
    int w = 4;
    int h = 3;
    int[] px = new int[w * h];
    for (int i = 0; i < px.length; i++) {
      px[i] = rgb(20 * i, 255 - 7 * i, (37 * i) % 256);
    }
    write(image(w, h, px), "png", dir.resolve("a.png"));
    List<ImageBatch> got = batches(ImageDataset.open(dir, pre(h, w, 0)), 8);
    assertEquals(1, got.size());
    ImageBatch b = got.get(0);
    assertEquals(1, b.count());
    assertArrayEquals(new long[] {1, 3, h, w}, b.shape());
    assertArrayEquals(new int[] {-1}, b.labels());
    float[] expected = new float[3 * w * h];
    for (int i = 0; i < px.length; i++) {
      expected[i] = normalised(px[i] >> 16 & 0xff, 0);
      expected[w * h + i] = normalised(px[i] >> 8 & 0xff, 1);
      expected[2 * w * h + i] = normalised(px[i] & 0xff, 2);
    }
    assertArrayEquals(expected, b.pixels());
  }

  @Test
  void jpegColoursArriveWithinTheCodecsRounding(@TempDir Path dir) throws Exception {
    // Flat colours are what JPEG keeps best: only colour-conversion rounding moves them.
    int[] colours = {rgb(200, 100, 50), rgb(0, 0, 0), rgb(255, 255, 255), rgb(30, 180, 240)};
    for (int k = 0; k < colours.length; k++) {
      int[] px = new int[16 * 16];
      java.util.Arrays.fill(px, colours[k]);
      write(image(16, 16, px), "jpg", dir.resolve("c" + k + ".jpg"));
    }
    ImageBatch b = batches(ImageDataset.open(dir, pre(16, 16, 0)), 10).get(0);
    assertEquals(colours.length, b.count());
    int plane = 16 * 16;
    for (int k = 0; k < colours.length; k++) {
      for (int c = 0; c < 3; c++) {
        int level = colours[k] >> (16 - 8 * c) & 0xff;
        for (int i = 0; i < plane; i++) {
          float v = b.pixels()[(k * 3 + c) * plane + i];
          assertEquals(normalised(level, c), v, 3 / 255.0 / STD[c], "image " + k + " channel " + c);
        }
      }
    }
  }

  @Test
  void greyImagesRepeatTheirLevelInEveryChannel(@TempDir Path dir) throws Exception {
    BufferedImage grey = new BufferedImage(2, 1, BufferedImage.TYPE_BYTE_GRAY);
    grey.getRaster().setSample(0, 0, 0, 128);
    grey.getRaster().setSample(1, 0, 0, 7);
    write(grey, "png", dir.resolve("grey.png"));
    float[] p = batches(ImageDataset.open(dir, pre(1, 2, 0)), 1).get(0).pixels();
    // As PIL's convert("RGB"): 128 stays 128 (Java's getRGB would say 188).
    assertArrayEquals(new float[] {normalised(128, 0), normalised(7, 0), normalised(128, 1), normalised(7, 1),
        normalised(128, 2), normalised(7, 2)}, p);
  }

  @Test
  void resizingGoesThroughTheShorterSideAndTheCentreCrop(@TempDir Path dir) throws Exception {
    int[] px = new int[8 * 4];
    for (int i = 0; i < px.length; i++) {
      px[i] = rgb(i * 7, 255 - i * 3, i);
    }
    write(image(8, 4, px), "png", dir.resolve("wide.png"));
    float[] got = batches(ImageDataset.open(dir, pre(2, 2, 2)), 1).get(0).pixels();
    int[] small = ImageResize.resizeAndCrop(px, 8, 4, 2, 2, 2);
    for (int i = 0; i < 4; i++) {
      assertEquals(normalised(small[i] >> 16 & 0xff, 0), got[i]);
      assertEquals(normalised(small[i] & 0xff, 2), got[8 + i]);
    }
  }

  @Test
  void aWrongSizeWithoutResizeNamesTheFlag(@TempDir Path dir) throws Exception {
    write(image(5, 5, new int[25]), "png", dir.resolve("a.png"));
    VitqException e = assertThrows(VitqException.class,
        () -> batches(ImageDataset.open(dir, pre(4, 4, 0)), 1));
    assertTrue(e.getMessage().contains("is 5x5 but the model takes 4x4; pass --resize N"), e.getMessage());
  }

  @Test
  void classFoldersGiveLabelsInSortedOrderAndBatchesKeepFileOrder(@TempDir Path dir) throws Exception {
    int[] px = new int[4];
    for (String cls : List.of("zebra", "ant", "moth")) {
      for (int i = 0; i < 2; i++) {
        write(image(2, 2, px), "png", dir.resolve(cls).resolve("img" + i + ".png"));
      }
    }
    Files.writeString(dir.resolve("ant").resolve("notes.txt"), "not an image");
    Files.createDirectories(dir.resolve(".cache"));
    write(image(2, 2, px), "png", dir.resolve(".cache").resolve("x.png"));
    ImageDataset data = ImageDataset.open(dir, pre(2, 2, 0));
    assertEquals(List.of("ant", "moth", "zebra"), data.classes());
    assertEquals(6, data.size());
    List<ImageBatch> got = batches(data, 4);
    assertEquals(List.of(4, 2), got.stream().map(ImageBatch::count).toList());
    assertArrayEquals(new int[] {0, 0, 1, 1}, got.get(0).labels());
    assertArrayEquals(new int[] {2, 2}, got.get(1).labels());
    assertEquals(dir.resolve("zebra").resolve("img1.png"), got.get(1).files().get(1));
  }

  @Test
  void aMissingOrEmptyFolderIsOneSentence(@TempDir Path dir) throws Exception {
    VitqException missing = assertThrows(VitqException.class,
        () -> ImageDataset.open(dir.resolve("nope"), pre(2, 2, 0)));
    assertTrue(missing.getMessage().endsWith("does not exist or is not a folder."), missing.getMessage());
    Files.writeString(dir.resolve("readme.txt"), "no images here");
    VitqException empty = assertThrows(VitqException.class, () -> ImageDataset.open(dir, pre(2, 2, 0)));
    assertEquals("Image folder " + dir + " holds no JPEG or PNG images.", empty.getMessage());
  }

  @Test
  void unreadableAndOversizedImagesAreSkippedByTheirHeaderAndSaidOnce(@TempDir Path dir) throws Exception {
    write(image(2, 2, new int[] {rgb(1, 2, 3), 0, 0, 0}), "png", dir.resolve("good.png"));
    // 400 megapixels declared, about 100 bytes on disk: decoding it would take gigabytes.
    Files.write(dir.resolve("huge.png"), declaringSize(20_000, 20_000));
    // Just past the limit: 10000 x 5001 = 50,010,000 pixels.
    Files.write(dir.resolve("past-limit.png"), declaringSize(10_000, 5_001));
    // A PNG signature and then nothing: a reader is found, but the header cannot be read.
    Files.write(dir.resolve("broken.png"), java.util.Arrays.copyOf(png(image(2, 2, new int[4])), 12));
    Files.write(dir.resolve("noise.jpg"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
    ImageDataset data = ImageDataset.open(dir, pre(2, 2, 0));
    List<ImageBatch> got = batches(data, 2);
    assertEquals(1, got.stream().mapToInt(ImageBatch::count).sum());
    assertEquals(List.of(dir.resolve("good.png")), got.stream().flatMap(b -> b.files().stream()).toList());
    assertEquals(4, data.skipped());
    assertEquals(List.of(new ImageDataset.Skip(dir.resolve("broken.png"), false, 0, 0),
        new ImageDataset.Skip(dir.resolve("huge.png"), true, 20_000, 20_000),
        new ImageDataset.Skip(dir.resolve("noise.jpg"), false, 0, 0),
        new ImageDataset.Skip(dir.resolve("past-limit.png"), true, 10_000, 5_001)), data.skips());
    assertEquals("Skipped 4 of 5 images in " + dir + ": 2 unreadable (broken.png, noise.jpg), 2 past the "
        + "50-megapixel limit (huge.png is 20000x20000, past-limit.png is 10000x5001).", data.skipSummary());
    // A second pass counts its own skips, not the sum of both.
    batches(data, 5);
    assertEquals(4, data.skipped());
  }

  @Test
  void aFolderWithNothingUsableSaysWhy(@TempDir Path dir) throws Exception {
    Files.write(dir.resolve("huge.png"), declaringSize(20_000, 20_000));
    Files.write(dir.resolve("noise.png"), new byte[] {1, 2, 3});
    ImageDataset data = ImageDataset.open(dir, pre(2, 2, 0));
    VitqException e = assertThrows(VitqException.class, () -> batches(data, 4));
    assertEquals("None of the 2 images in " + dir + " could be used: 1 unreadable (noise.png), 1 past the "
        + "50-megapixel limit (huge.png is 20000x20000).", e.getMessage());
  }

  @Test
  void theLimitIsInThePixelCountNotTheSides(@TempDir Path dir) throws Exception {
    // 100000 x 1 is far wider than any photo but tiny; the header passes and the (2x2) data then fails to decode.
    Files.write(dir.resolve("strip.png"), declaringSize(100_000, 1));
    write(image(2, 2, new int[4]), "png", dir.resolve("ok.png"));
    ImageDataset data = ImageDataset.open(dir, pre(2, 2, 0));
    batches(data, 4);
    assertEquals(List.of(new ImageDataset.Skip(dir.resolve("strip.png"), false, 0, 0)), data.skips());
    assertFalse(data.skipSummary().contains("megapixel"));
  }
}
