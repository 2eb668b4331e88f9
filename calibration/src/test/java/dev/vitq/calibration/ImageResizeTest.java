package dev.vitq.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.api.Test;

/** Bilinear resize of the shorter side and centre crop, on images small enough to work out by hand. */
class ImageResizeTest {
  private static int rgb(int r, int g, int b) {
    return r << 16 | g << 8 | b;
  }

  /** A w x h image whose red is 10 x + y, green 100 + x, blue 200 - y. */
  private static int[] ramp(int w, int h) {
    int[] p = new int[w * h];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        p[y * w + x] = rgb(10 * x + y, 100 + x, 200 - y);
      }
    }
    return p;
  }

  @Test
  void theSameSizeIsTheSameImage() {
    int[] img = ramp(5, 4);
    assertArrayEquals(img, ImageResize.resizeAndCrop(img, 5, 4, 4, 5, 4));
  }

  @Test
  void cropsTheCentreWithoutResampling() {
    // 6x4, shorter side already 4: the centre 4x4 are columns 1..4.
    int[] img = ramp(6, 4);
    int[] out = ImageResize.resizeAndCrop(img, 6, 4, 4, 4, 4);
    int[] expected = new int[16];
    for (int y = 0; y < 4; y++) {
      for (int x = 0; x < 4; x++) {
        expected[y * 4 + x] = img[y * 6 + x + 1];
      }
    }
    assertArrayEquals(expected, out);
    // An odd margin leaves the extra column on the right: 7 wide, 4 kept, columns 1..4.
    int[] odd = ImageResize.resizeAndCrop(ramp(7, 4), 7, 4, 4, 4, 4);
    assertArrayEquals(expected, odd);
  }

  @Test
  void halvingAveragesEachTwoByTwoSquare() {
    int[] img = {
        rgb(0, 0, 0), rgb(4, 8, 100), rgb(10, 10, 10), rgb(20, 20, 20),
        rgb(8, 0, 0), rgb(12, 8, 100), rgb(30, 30, 30), rgb(40, 40, 41),
        rgb(1, 1, 1), rgb(1, 1, 1), rgb(255, 255, 255), rgb(255, 255, 255),
        rgb(3, 3, 3), rgb(3, 3, 3), rgb(0, 0, 0), rgb(0, 0, 0)};
    // Sample points fall exactly between four pixels: their mean, rounded half up (25.25 -> 25, 127.5 -> 128).
    int[] expected = {rgb(6, 4, 50), rgb(25, 25, 25), rgb(2, 2, 2), rgb(128, 128, 128)};
    assertArrayEquals(expected, ImageResize.resizeAndCrop(img, 4, 4, 2, 2, 2));
  }

  @Test
  void doublingInterpolatesAtQuarterPixelsAndClampsAtTheEdges() {
    int[] img = {rgb(0, 0, 0), rgb(100, 200, 40), rgb(200, 0, 80), rgb(100, 100, 120)};
    int[] out = ImageResize.resizeAndCrop(img, 2, 2, 4, 4, 4);
    // Output column x samples source x / 2 - 1/4, clamped to [0, 1]: 0, 0.25, 0.75, 1.
    assertArrayEquals(new int[] {rgb(0, 0, 0), rgb(25, 50, 10), rgb(75, 150, 30), rgb(100, 200, 40)},
        java.util.Arrays.copyOfRange(out, 0, 4));
    // Row 1 samples source row 0.25: three quarters of row 0, one quarter of row 1.
    assertArrayEquals(new int[] {rgb(50, 0, 20), rgb(63, 44, 30), rgb(88, 131, 50), rgb(100, 175, 60)},
        java.util.Arrays.copyOfRange(out, 4, 8));
    assertArrayEquals(new int[] {rgb(200, 0, 80), rgb(175, 25, 90), rgb(125, 75, 110), rgb(100, 100, 120)},
        java.util.Arrays.copyOfRange(out, 12, 16));
  }

  @Test
  void aWideImageIsScaledByItsHeightThenCropped() {
    // 8x4 to shorter side 2 is 4x2, whose centre 2x2 are its columns 1 and 2: source columns 2..5, rows 0..3.
    int[] img = ramp(8, 4);
    int[] out = ImageResize.resizeAndCrop(img, 8, 4, 2, 2, 2);
    int[] expected = new int[4];
    for (int y = 0; y < 2; y++) {
      for (int x = 0; x < 2; x++) {
        int sx = 2 + 2 * x;
        int sy = 2 * y;
        // Mean of the 2x2 source square; red 10 x + y averages to 10 (sx + 0.5) + sy + 0.5.
        expected[y * 2 + x] = rgb((int) Math.round(10 * (sx + 0.5) + sy + 0.5), (int) Math.round(100 + sx + 0.5),
            (int) Math.round(200 - sy - 0.5));
      }
    }
    assertArrayEquals(expected, out);
  }
}
