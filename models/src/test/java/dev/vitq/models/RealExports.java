package dev.vitq.models;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The fixtures made by real exporters ({@code scripts/fixtures/make_fixtures.py}; their README lists what each one
 * is): torchvision, Hugging Face, Optimum, timm and CLIP ViTs through PyTorch's TorchScript exporter, a Swin
 * transformer, and float16. Each comes with the input it was run on and torch's output for it.
 */
public final class RealExports {
  /** Every fixture, by file name without {@code .onnx}. */
  public static final List<String> ALL = List.of(
      "tv_vit_op11_static", "tv_vit_op11_dyn", "tv_vit_op12_static", "tv_vit_op12_dyn", "tv_vit_op13_static",
      "tv_vit_op13_dyn", "tv_vit_op14_static", "tv_vit_op14_dyn", "tv_vit_op15_static", "tv_vit_op15_dyn",
      "tv_vit_op16_static", "tv_vit_op16_dyn", "tv_vit_op17_static", "tv_vit_op17_dyn", "tv_swin_op14",
      "hf_vit_eager_op13_dyn", "hf_vit_eager_op14_dyn", "optimum_vit_op14", "hf_vit_sdpa_op14_dyn",
      "sdpa_nan_guard_op17_dyn", "hf_deit_distilled_op14_dyn", "timm_vit_op17_dyn", "timm_deit_distilled_op17_dyn",
      "timm_layerscale_op17_dyn", "timm_registers_op17_dyn", "timm_meanpool_op17_dyn", "clip_vision_op14_dyn",
      "timm_vit_fp16_op17");

  /**
   * The fixtures made with the libraries' own modules by torch 2.13's default exporter ({@code _dynamo}) and its
   * TorchScript exporter ({@code _ts}) ({@code scripts/fixtures/make_library_fixtures.py}; {@code lib/README.md}).
   */
  public static final List<String> LIBRARY = List.of(
      "lib/hf_clip_dynamo", "lib/hf_clip_ts", "lib/hf_deit_dynamo", "lib/hf_deit_ts", "lib/hf_dinov2_dynamo",
      "lib/hf_dinov2_ts", "lib/hf_dinov2_reg4_dynamo", "lib/hf_siglip_dynamo", "lib/hf_siglip_ts",
      "lib/hf_vit_dynamo", "lib/hf_vit_ts", "lib/hf_vit_eager_dynamo", "lib/hf_vit_eager_ts",
      "lib/openclip_vit_dynamo", "lib/openclip_vit_ts", "lib/timm_clip_dynamo", "lib/timm_clip_ts",
      "lib/timm_deit3_dynamo", "lib/timm_deit3_ts", "lib/timm_deit_distilled_dynamo", "lib/timm_deit_distilled_ts",
      "lib/timm_dinov2_dynamo", "lib/timm_dinov2_ts", "lib/timm_dinov2_reg4_dynamo", "lib/timm_dinov2_reg4_ts",
      "lib/timm_eva02_dynamo", "lib/timm_eva02_ts", "lib/timm_siglip_dynamo", "lib/timm_siglip_ts",
      "lib/timm_vit_dynamo", "lib/timm_vit_ts", "lib/timm_vit_dynamo_dyn", "lib/timm_vit_ts_dyn");

  /** The fixture that is not a ViT: Swin's windowed attention and patch merging. */
  public static final String SWIN = "tv_swin_op14";

  private RealExports() {}

  /** The fixture's ONNX bytes. */
  public static byte[] model(String name) throws IOException {
    return resource(name + ".onnx");
  }

  /** Copies the fixture into {@code dir} and returns its path. */
  public static Path copy(String name, Path dir) throws IOException {
    Path p = dir.resolve(name + ".onnx");
    Files.write(p, model(name));
    return p;
  }

  /** The input the fixture was run on: [1 or 2, 3, 32, 32] float32. */
  public static float[] input(String name) throws IOException {
    return floats(resource(name + ".input.bin"));
  }

  /** torch's outputs for {@link #input}, flattened and concatenated in output order. */
  public static float[] output(String name) throws IOException {
    return floats(resource(name + ".output.bin"));
  }

  private static byte[] resource(String file) throws IOException {
    try (InputStream in = RealExports.class.getResourceAsStream("fixtures/" + file)) {
      if (in == null) {
        throw new IOException("No fixture " + file);
      }
      return in.readAllBytes();
    }
  }

  private static float[] floats(byte[] bytes) {
    float[] out = new float[bytes.length / 4];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }
}
