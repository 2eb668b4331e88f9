package dev.vitq.split;

import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.GraphBuilder;
import dev.vitq.models.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;

/**
 * How boundary tokens are coded when a byte budget asks for more than fewer tokens: optionally projected onto the
 * {@code rank} principal components of calibration tokens, then coded per component (or channel) in {@code bits}
 * bits, uniformly between that component's clipping range, and packed most significant bit first. The device half
 * encodes and packs; the cloud half unpacks and reconstructs; only the packed codes cross.
 *
 * @param width values per token (the model's width)
 * @param rank components per token; {@code width} means no projection
 * @param bits bits per code: 8, 6 or 4
 * @param mean the calibration tokens' mean (zeros without projection)
 * @param basis row-major [width, rank]: column j is component j (null without projection)
 * @param scale per component, the step between codes
 * @param offset per component, the value of code 0
 */
record BoundaryCodec(int width, int rank, int bits, float[] mean, float[] basis, float[] scale, float[] offset) {
  /** The code widths a budget chooses from. */
  static final List<Integer> BITS = List.of(8, 6, 4);

  /** The tail shares tried as a component's clipping range (MSE picks one per component). */
  private static final double[] TAILS = {0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2};

  boolean projected() {
    return basis != null;
  }

  /** Codes per packed group: as many as fill whole bytes (8 bits: 1, 6 bits: 4 in 3 bytes, 4 bits: 2 in 1). */
  int group() {
    return bits == 6 ? 4 : bits == 4 ? 2 : 1;
  }

  int groupBytes() {
    return group() * bits / 8;
  }

  int bytesPerToken() {
    return rank * bits / 8;
  }

  int qmax() {
    return (1 << bits) - 1;
  }

  /**
   * The principal components of calibration tokens.
   *
   * @param mean per channel
   * @param vectors components, largest variance first, each of length width
   * @param variances their variances
   */
  record Pca(float[] mean, double[][] vectors, double[] variances) {
    /**
     * The components of {@code n} tokens of {@code width} values (row-major).
     */
    static Pca of(float[] tokens, int n, int width) {
      double[] mean = new double[width];
      for (int i = 0; i < n; i++) {
        for (int c = 0; c < width; c++) {
          mean[c] += tokens[i * width + c];
        }
      }
      for (int c = 0; c < width; c++) {
        mean[c] /= n;
      }
      double[][] cov = new double[width][width];
      double[] d = new double[width];
      for (int i = 0; i < n; i++) {
        for (int c = 0; c < width; c++) {
          d[c] = tokens[i * width + c] - mean[c];
        }
        for (int a = 0; a < width; a++) {
          double da = d[a];
          double[] row = cov[a];
          for (int b = a; b < width; b++) {
            row[b] += da * d[b];
          }
        }
      }
      for (int a = 0; a < width; a++) {
        for (int b = a; b < width; b++) {
          cov[a][b] /= Math.max(1, n - 1);
          cov[b][a] = cov[a][b];
        }
      }
      EigenDecomposition e = new EigenDecomposition(new Array2DRowRealMatrix(cov, false));
      double[] values = e.getRealEigenvalues();
      Integer[] order = new Integer[width];
      for (int i = 0; i < width; i++) {
        order[i] = i;
      }
      // Largest variance first; equal variances keep the decomposition's order, so the result is deterministic.
      Arrays.sort(order, (x, y) -> Double.compare(values[y], values[x]));
      double[][] vectors = new double[width][];
      double[] variances = new double[width];
      for (int i = 0; i < width; i++) {
        vectors[i] = e.getEigenvector(order[i]).toArray();
        variances[i] = values[order[i]];
        // A component's sign is arbitrary: fix it (largest entry positive) so the files do not depend on it.
        int arg = 0;
        for (int c = 1; c < width; c++) {
          if (Math.abs(vectors[i][c]) > Math.abs(vectors[i][arg])) {
            arg = c;
          }
        }
        if (vectors[i][arg] < 0) {
          for (int c = 0; c < width; c++) {
            vectors[i][c] = -vectors[i][c];
          }
        }
      }
      float[] m = new float[width];
      for (int c = 0; c < width; c++) {
        m[c] = (float) mean[c];
      }
      return new Pca(m, vectors, variances);
    }
  }

  /**
   * Fits a codec to {@code n} calibration tokens: the first {@code rank} components of {@code pca} (none when
   * {@code rank == width}) and, per component, the clipping range among a few tail shares that gives the least
   * squared error of the decoded values.
   */
  static BoundaryCodec fit(float[] tokens, int n, int width, int rank, int bits, Pca pca) {
    if (!BITS.contains(bits) || rank < 1 || rank > width || rank % (bits == 6 ? 4 : bits == 4 ? 2 : 1) != 0) {
      throw new IllegalArgumentException("No codec of " + rank + " components at " + bits + " bits");
    }
    boolean project = rank < width;
    float[] mean = new float[width];
    float[] basis = null;
    if (project) {
      mean = pca.mean().clone();
      basis = new float[width * rank];
      for (int c = 0; c < width; c++) {
        for (int j = 0; j < rank; j++) {
          basis[c * rank + j] = (float) pca.vectors()[j][c];
        }
      }
    }
    float[] scale = new float[rank];
    float[] offset = new float[rank];
    BoundaryCodec unscaled = new BoundaryCodec(width, rank, bits, mean, basis, scale, offset);
    float[] y = unscaled.project(tokens, n);
    float[] column = new float[n];
    int qmax = (1 << bits) - 1;
    for (int j = 0; j < rank; j++) {
      for (int i = 0; i < n; i++) {
        column[i] = y[i * rank + j];
      }
      float[] sorted = column.clone();
      Arrays.sort(sorted);
      double best = Double.POSITIVE_INFINITY;
      for (double tail : TAILS) {
        int k = (int) Math.floor(tail * (n - 1));
        float lo = sorted[k];
        float hi = sorted[n - 1 - k];
        float s = hi > lo ? (hi - lo) / qmax : 1f;
        double err = 0;
        for (int i = 0; i < n; i++) {
          float q = Math.min(qmax, Math.max(0, Math.round((column[i] - lo) / s)));
          double diff = q * s + lo - column[i];
          err += diff * diff;
        }
        if (err < best) {
          best = err;
          scale[j] = s;
          offset[j] = lo;
        }
      }
    }
    return unscaled;
  }

  /** The components (or channels) of {@code n} tokens, before coding: [n, rank]. */
  float[] project(float[] tokens, int n) {
    if (!projected()) {
      return tokens.clone();
    }
    float[] y = new float[n * rank];
    float[] d = new float[width];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < width; c++) {
        d[c] = tokens[i * width + c] - mean[c];
      }
      for (int c = 0; c < width; c++) {
        float dc = d[c];
        int row = c * rank;
        int out = i * rank;
        for (int j = 0; j < rank; j++) {
          y[out + j] += dc * basis[row + j];
        }
      }
    }
    return y;
  }

  /** {@code n} tokens coded and decoded as device and cloud do: what the cloud's blocks receive. */
  float[] roundTrip(float[] tokens, int n) {
    float[] y = project(tokens, n);
    int qmax = qmax();
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < rank; j++) {
        int at = i * rank + j;
        float q = Math.min(qmax, Math.max(0, (float) Math.rint((y[at] - offset[j]) / scale[j])));
        y[at] = q * scale[j] + offset[j];
      }
    }
    if (!projected()) {
      return y;
    }
    float[] x = new float[n * width];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < width; c++) {
        float sum = mean[c];
        int row = c * rank;
        for (int j = 0; j < rank; j++) {
          sum += y[i * rank + j] * basis[row + j];
        }
        x[i * width + c] = sum;
      }
    }
    return x;
  }

  /**
   * Adds the device's encoder: float tokens [batch, tokens, width] to packed codes, uint8 [batch, tokens,
   * bytesPerToken]. Returns the codes' name.
   */
  String encode(GraphBuilder b, String tokens) {
    float[] inv = new float[rank];
    float[] shift = new float[rank];
    String z;
    if (projected()) {
      // z = ((x - mean) B - offset) / scale = x (B / scale) - (mean B + offset) / scale: one MatMul and one Add.
      float[] w = new float[width * rank];
      for (int j = 0; j < rank; j++) {
        double mb = 0;
        for (int c = 0; c < width; c++) {
          w[c * rank + j] = basis[c * rank + j] / scale[j];
          mb += (double) mean[c] * basis[c * rank + j];
        }
        shift[j] = (float) (-(mb + offset[j]) / scale[j]);
      }
      String weights = b.initializer("vitq_boundary_encode", Tensor.ofFloats("", List.of((long) width, (long) rank), w));
      z = b.op("MatMul", List.of(tokens, weights));
    } else {
      for (int j = 0; j < rank; j++) {
        inv[j] = 1f / scale[j];
        shift[j] = -offset[j] / scale[j];
      }
      z = b.op("Mul", List.of(tokens, b.initializer("vitq_boundary_inverse_scale",
          Tensor.ofFloats("", List.of((long) rank), inv))));
    }
    z = b.op("Add", List.of(z, b.initializer("vitq_boundary_shift", Tensor.ofFloats("", List.of((long) rank),
        shift))));
    String q = b.op("Clip", List.of(b.op("Round", List.of(z)), b.scalar(0f), b.scalar(qmax())));
    String codes = b.op("Cast", List.of(q), Attribute.of("to", (long) DType.INT32.code()));
    if (group() > 1) {
      String grouped = b.op("Reshape", List.of(codes, b.longs(0, 0, rank / group(), group())));
      String packed = b.op("ReduceSum", List.of(b.op("Mul", List.of(grouped, ints(b, "vitq_boundary_code_weight",
          codeWeights()))), b.longs(3)), Attribute.of("keepdims", 1L));
      String bytes = b.op("Mod", List.of(b.op("Div", List.of(packed, ints(b, "vitq_boundary_byte_weight",
          byteWeights()))), ints(b, "vitq_boundary_byte", new int[] {256})));
      codes = b.op("Reshape", List.of(bytes, b.longs(0, 0, bytesPerToken())));
    }
    return b.op("Cast", List.of(codes), Attribute.of("to", (long) DType.UINT8.code()));
  }

  /**
   * Adds the cloud's decoder: packed codes uint8 [batch, tokens, bytesPerToken] to tokens [batch, tokens, width].
   * Returns the tokens' name.
   */
  String decode(GraphBuilder c, String packed) {
    String codes = c.op("Cast", List.of(packed), Attribute.of("to", (long) DType.INT32.code()));
    if (group() > 1) {
      String grouped = c.op("Reshape", List.of(codes, c.longs(0, 0, rank / group(), groupBytes())));
      String value = c.op("ReduceSum", List.of(c.op("Mul", List.of(grouped, ints(c, "vitq_boundary_byte_weight",
          byteWeights()))), c.longs(3)), Attribute.of("keepdims", 1L));
      String split = c.op("Mod", List.of(c.op("Div", List.of(value, ints(c, "vitq_boundary_code_weight",
          codeWeights()))), ints(c, "vitq_boundary_levels", new int[] {1 << bits})));
      codes = c.op("Reshape", List.of(split, c.longs(0, 0, rank)));
    }
    String y = c.op("Add", List.of(c.op("Mul", List.of(c.op("Cast", List.of(codes), Attribute.of("to",
        (long) DType.FLOAT.code())), c.initializer(SCALE_NAME, Tensor.ofFloats("", List.of((long) rank), scale)))),
        c.initializer(OFFSET_NAME, Tensor.ofFloats("", List.of((long) rank), offset))));
    if (!projected()) {
      return y;
    }
    float[] bt = new float[rank * width];
    for (int ch = 0; ch < width; ch++) {
      for (int j = 0; j < rank; j++) {
        bt[j * width + ch] = basis[ch * rank + j];
      }
    }
    return c.op("Add", List.of(c.op("MatMul", List.of(y, c.initializer(BASIS_NAME, Tensor.ofFloats("",
        List.of((long) rank, (long) width), bt)))), c.initializer(MEAN_NAME, Tensor.ofFloats("",
        List.of((long) width), mean))));
  }

  /** Names of the cloud's initializers the manifest points to. */
  static final String SCALE_NAME = "vitq_boundary_scale";
  static final String OFFSET_NAME = "vitq_boundary_offset";
  static final String BASIS_NAME = "vitq_boundary_basis";
  static final String MEAN_NAME = "vitq_boundary_mean";

  /** Code i of a group is multiplied by 2^(bits * (group - 1 - i)): the first code in the top bits. */
  private int[] codeWeights() {
    int[] w = new int[group()];
    for (int i = 0; i < w.length; i++) {
      w[i] = 1 << (bits * (w.length - 1 - i));
    }
    return w;
  }

  /** Byte j of a group holds bits 8 * (groupBytes - 1 - j) and up of the group's value: big-endian. */
  private int[] byteWeights() {
    int[] w = new int[groupBytes()];
    for (int j = 0; j < w.length; j++) {
      w[j] = 1 << (8 * (w.length - 1 - j));
    }
    return w;
  }

  private static String ints(GraphBuilder b, String hint, int[] values) {
    return b.initializer(hint, Tensor.ofInts("", List.of((long) values.length), values));
  }

  /** The manifest's description of the coding: enough to pack, unpack and decode without reading vitq. */
  Map<String, Object> describe() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("codec", projected() ? "pca" : "channels");
    m.put("components", rank);
    m.put("bits", bits);
    m.put("codes_per_group", group());
    m.put("bytes_per_group", groupBytes());
    m.put("pack", "per token, its " + rank + " codes in component order; each group of " + group() + " code(s) is "
        + "the integer sum of code[i] * 2^(" + bits + " * (" + group() + " - 1 - i)) (the first code in the top bits), "
        + "written as " + groupBytes() + " byte(s) big-endian");
    m.put("unpack", "per group: value = sum of byte[j] * 2^(8 * (" + groupBytes() + " - 1 - j)); code[i] = floor(value / "
        + "2^(" + bits + " * (" + group() + " - 1 - i))) mod " + (1 << bits));
    m.put("encode", projected()
        ? "y[t, j] = sum over c of (x[t, c] - mean[c]) * basis[c, j]; code[t, j] = clip(round_half_even((y[t, j] - "
            + "offset[j]) / scale[j]), 0, " + qmax() + ") (device.onnx does this)"
        : "code[t, c] = clip(round_half_even((x[t, c] - offset[c]) / scale[c]), 0, " + qmax() + ") (device.onnx does "
            + "this)");
    m.put("decode", projected()
        ? "x[t, c] = mean[c] + sum over j of (code[t, j] * scale[j] + offset[j]) * basis[c, j] (cloud.onnx does this)"
        : "x[t, c] = code[t, c] * scale[c] + offset[c] (cloud.onnx does this)");
    m.put("scale", scale);
    m.put("offset", offset);
    if (projected()) {
      // The basis is 4 * width * rank bytes: it lives in cloud.onnx only, where decoding needs it.
      m.put("basis", OrderedMaps.of("in", Bundle.CLOUD, "initializer", BASIS_NAME, "dtype", "float32", "shape",
          List.of(rank, width), "layout", "row j is component j (basis[c, j] above is this tensor's [j, c])"));
      m.put("mean", OrderedMaps.of("in", Bundle.CLOUD, "initializer", MEAN_NAME, "dtype", "float32", "shape",
          List.of(width)));
    }
    return m;
  }

  /** Ranks to try for a budget: the largest that fits, in steps the packing allows. */
  static int largestRank(long budgetPerImage, int tokens, int width, int bits) {
    int step = 8;
    long rank = budgetPerImage * 8 / ((long) tokens * bits);
    rank = Math.min(width, rank - rank % step);
    if (rank == width && (width * bits) % 8 != 0) {
      rank -= step;
    }
    return (int) Math.max(0, rank);
  }

  @Override
  public String toString() {
    return (projected() ? "PCA " + rank + " of " + width : "all " + width + " channels") + ", " + bits + "-bit codes";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BoundaryCodec c && c.width == width && c.rank == rank && c.bits == bits
        && Arrays.equals(c.mean, mean) && Arrays.equals(c.basis, basis) && Arrays.equals(c.scale, scale)
        && Arrays.equals(c.offset, offset);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(scale) * 31 + rank * 7 + bits;
  }
}
