package dev.vitq.calibration;

/**
 * Bilinear resize of the shorter side and centre crop, on packed RGB pixels. Written out rather than left to Java2D
 * so that results are the same on every JDK.
 */
final class ImageResize {
  private ImageResize() {}

  /** Resizes so the shorter side is {@code shorter}, then crops the centre {@code outW x outH}. */
  static int[] resizeAndCrop(int[] rgb, int w, int h, int shorter, int outW, int outH) {
    double s = (double) shorter / Math.min(w, h);
    int rw = Math.max(outW, (int) Math.round(w * s));
    int rh = Math.max(outH, (int) Math.round(h * s));
    int x0 = (rw - outW) / 2;
    int y0 = (rh - outH) / 2;
    int[] out = new int[outW * outH];
    double sx = (double) w / rw;
    double sy = (double) h / rh;
    for (int y = 0; y < outH; y++) {
      // Half-pixel centres, as PIL and OpenCV place them.
      double fy = Math.max(0, (y + y0 + 0.5) * sy - 0.5);
      int ya = Math.min((int) fy, h - 1);
      int yb = Math.min(ya + 1, h - 1);
      double dy = fy - ya;
      for (int x = 0; x < outW; x++) {
        double fx = Math.max(0, (x + x0 + 0.5) * sx - 0.5);
        int xa = Math.min((int) fx, w - 1);
        int xb = Math.min(xa + 1, w - 1);
        double dx = fx - xa;
        int p = 0;
        for (int shift = 16; shift >= 0; shift -= 8) {
          double top = ch(rgb[ya * w + xa], shift) * (1 - dx) + ch(rgb[ya * w + xb], shift) * dx;
          double bottom = ch(rgb[yb * w + xa], shift) * (1 - dx) + ch(rgb[yb * w + xb], shift) * dx;
          p |= ((int) Math.round(top * (1 - dy) + bottom * dy) & 0xff) << shift;
        }
        out[y * outW + x] = p;
      }
    }
    return out;
  }

  private static int ch(int p, int shift) {
    return (p >> shift) & 0xff;
  }
}
