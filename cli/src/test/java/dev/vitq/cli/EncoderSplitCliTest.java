package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.api.Vitq;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.ImageDataset;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.calibration.Preprocessing;
import dev.vitq.calibration.Progress;
import dev.vitq.models.Model;
import dev.vitq.models.Tensor;
import dev.vitq.models.builder.EncoderFeatures;
import dev.vitq.models.builder.EncoderFeatures.Mlp;
import dev.vitq.models.builder.EncoderFeatures.Output;
import dev.vitq.models.builder.Spelling;
import dev.vitq.models.builder.VitBuilder;
import dev.vitq.models.builder.VitConfig;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.quantizer.Evaluation;
import dev.vitq.server.DecoderServer;
import dev.vitq.server.ServeRequest;
import dev.vitq.split.Bundle;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code vitq export --split}, {@code serve} and the budget on encoders without a classifier: a headless DINOv2-like
 * encoder (registers, LayerScale), a SigLIP-like one (attention-pool head) and an EVA-02-like one (SwiGLU, rotary),
 * 3 blocks, split after the first.
 */
class EncoderSplitCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final VitConfig CONFIG = new VitConfig(32, 8, 3, 32, 3, 2, 64, 5);
  private static final InferenceSession.Config SESSION = InferenceSession.Config.defaults().withThreads(1);

  @TempDir static Path shared;
  static Path calib;
  static Path heldOut;

  static Stream<Arguments> encoders() {
    return Stream.of(
        Arguments.of("dinov2", new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4)),
        Arguments.of("siglip", new EncoderFeatures(Output.ATTENTION_POOL, Mlp.GELU, false, false, 0)),
        Arguments.of("eva02", new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0)));
  }

  static Stream<Arguments> encodersAndFormats() {
    return encoders().flatMap(a -> Stream.of("onnx", "ort").map(f -> Arguments.of(a.get()[0], a.get()[1], f)));
  }

  @BeforeAll
  static void images() throws Exception {
    calib = CliFixtures.images(shared.resolve("calib"), 32, 3, 8, 3);
    heldOut = CliFixtures.images(shared.resolve("held-out"), 32, 3, 2, 4);
  }

  /**
   * The built encoder with its class and register tokens as large as its patch tokens, as in a trained encoder (a
   * DINOv2-S stream after block 6: class token RMS 0.71, registers 0.72, patch tokens 1.21); the builder draws them
   * from N(0, 0.02), 50 times smaller than its patch tokens, so one 8-bit range for the stream would leave them
   * nothing and the pooled class token would be the boundary's noise.
   */
  private static Path model(String name, EncoderFeatures features) throws Exception {
    Path file = shared.resolve(name + ".onnx");
    if (!Files.exists(file)) {
      Model built = VitBuilder.build(CONFIG, Spelling.TIMM_17, features, 11);
      List<Tensor> inits = new ArrayList<>();
      for (Tensor t : built.graph().initializers()) {
        if (t.name().equals("cls_token") || t.name().equals("reg_token")) {
          float[] v = t.floats();
          for (int i = 0; i < v.length; i++) {
            v[i] *= 50;
          }
          t = Tensor.ofFloats(t.name(), t.dims(), v);
        }
        inits.add(t);
      }
      OnnxWriter.write(built.withGraph(built.graph().withInitializers(inits)), file, OnnxWriter.Placement.AUTO);
    }
    return file;
  }

  @ParameterizedTest(name = "{0} {2}")
  @MethodSource("encodersAndFormats")
  void deviceThenCloudComputesTheSingleQuantizedEmbedding(String name, EncoderFeatures features, String format,
      @TempDir Path dir) throws Exception {
    Path model = model(name, features);
    Path bundle = dir.resolve("bundle");
    CliRun e = CliRun.of("export", model.toString(), "--calib", calib.toString(), "--split", "1", "--format", format,
        "-o", bundle.toString(), "-q");
    assertEquals(0, e.exitCode(), e.err());
    Path single = dir.resolve("single.onnx");
    CliRun q = CliRun.of("quantize", model.toString(), "--calib", calib.toString(), "-o", single.toString(), "-q");
    assertEquals(0, q.exitCode(), q.err());
    JsonNode manifest = JSON.readTree(bundle.resolve(Bundle.MANIFEST).toFile());
    assertEquals("embedding", manifest.path("cloud").path("output_kind").asText());
    assertTrue(Files.exists(bundle.resolve("device." + format)) && Files.exists(bundle.resolve("cloud." + format)));

    // Held-out images drawn as the calibration images are, run device then cloud as eval runs a bundle.
    Preprocessing preprocessing = preprocessing(bundle);
    Evaluation.Embeddings chained;
    try (Bundle.Pair pair = Bundle.Pair.open(Bundle.read(bundle), SESSION)) {
      chained = pair.embed(ImageDataset.open(heldOut, preprocessing), 4, Progress.NONE);
    }
    Evaluation.Embeddings reference;
    try (InferenceSession s = InferenceSession.of(single, SESSION)) {
      reference = Evaluation.embed(s, ImageDataset.open(heldOut, preprocessing), 4, Progress.NONE);
    }
    assertEquals(6, chained.vectors().length);
    assertEquals(CONFIG.embedDim(), chained.vectors()[0].length, "one pooled vector per image");
    double[] cosines = chained.cosines(reference);
    for (int i = 0; i < cosines.length; i++) {
      assertTrue(cosines[i] >= 0.999, name + " image " + i + ": cosine " + cosines[i] + " with the single quantized "
          + "model");
    }
    // eval --bundle measures the pair as an embedding: against the single model, the same cosines.
    CliRun eval = CliRun.of("eval", "--bundle", bundle.toString(), "--ref", single.toString(), "--data",
        heldOut.toString(), "--json", "-q");
    assertEquals(0, eval.exitCode(), eval.err());
    JsonNode measured = JSON.readTree(eval.out()).path("embedding");
    assertEquals(Evaluation.mean(cosines), measured.path("cosine_mean").asDouble(), 1e-6, eval.out());
  }

  private static Preprocessing preprocessing(Path bundle) throws Exception {
    JsonNode pre = JSON.readTree(bundle.resolve(Bundle.MANIFEST).toFile()).path("preprocessing");
    return new Preprocessing(pre.path("height").asInt(), pre.path("width").asInt(), pre.path("scale").asDouble(),
        JSON.convertValue(pre.path("mean"), double[].class), JSON.convertValue(pre.path("std"), double[].class),
        pre.path("resize").asInt());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("encoders")
  void aByteBudgetIsChosenByMeanCosineAndKept(String name, EncoderFeatures features, @TempDir Path dir)
      throws Exception {
    Path model = model(name, features);
    Path bundle = dir.resolve("bundle");
    // Half the bytes of every token as 8-bit levels.
    long tokens = CONFIG.patches() + features.prefixTokens();
    long budget = tokens * CONFIG.embedDim() / 2;
    CliRun e = CliRun.of("export", model.toString(), "--calib", calib.toString(), "--split", "1", "--max-bytes",
        "" + budget, "-o", bundle.toString());
    assertEquals(0, e.exitCode(), e.err());
    assertTrue(e.out().contains("mean cosine"), e.out());
    assertFalse(e.out().contains("agreement"), e.out());
    JsonNode boundary = JSON.readTree(bundle.resolve(Bundle.MANIFEST).toFile()).path("boundary");
    long bytes = boundary.path("bytes_per_image").asLong();
    assertTrue(bytes > 0 && bytes <= budget, bytes + " bytes per image, budget " + budget);
    JsonNode chosen = boundary.path("budget");
    double cosine = chosen.path("mean_cosine").asDouble();
    assertTrue(cosine > 0.5 && cosine <= 1.0 + 1e-9, "the choice's mean cosine: " + chosen);
    assertFalse(chosen.has("agreement"), chosen.toString());
    for (JsonNode t : chosen.path("tried")) {
      assertTrue(t.path("mean_cosine").asDouble() <= cosine, "the best is chosen: " + chosen);
      assertTrue(t.path("bytes_per_image").asLong() <= budget, t.toString());
    }
    // On held-out images drawn as the calibration images are, the bundle keeps about the direction it was chosen by:
    // run as eval would, device then cloud batch by batch, against the float model.
    Preprocessing preprocessing = preprocessing(bundle);
    Evaluation.Embeddings chained;
    try (Bundle.Pair pair = Bundle.Pair.open(Bundle.read(bundle), SESSION)) {
      chained = pair.embed(ImageDataset.open(heldOut, preprocessing), 4, Progress.NONE);
    }
    Evaluation.Embeddings reference;
    try (InferenceSession s = InferenceSession.of(model, SESSION)) {
      reference = Evaluation.embed(s, ImageDataset.open(heldOut, preprocessing), 4, Progress.NONE);
    }
    assertEquals(6, chained.vectors().length);
    double heldOutCosine = Evaluation.mean(chained.cosines(reference));
    assertTrue(heldOutCosine > cosine - 0.05, name + ": mean cosine " + heldOutCosine + " on held-out images, "
        + cosine + " on the scoring half of the calibration images");
  }

  @Test
  void tokenReductionsThatDoNotFitAnEncoderAreRefusedInOneSentence(@TempDir Path dir) throws Exception {
    Path eva = model("eva02", new EncoderFeatures(Output.POOLED, Mlp.SWIGLU, true, false, 0));
    Path bundle = dir.resolve("bundle");
    CliRun.of("export", eva.toString(), "--calib", calib.toString(), "--split", "1", "--pool", "2", "-o",
        bundle.toString()).assertUserError("rotary embedding", bundle);
    Path tokens = model("tokens", new EncoderFeatures(Output.TOKENS, Mlp.GELU, false, false, 0));
    CliRun.of("export", tokens.toString(), "--calib", calib.toString(), "--split", "1", "--merge", "2", "-o",
        bundle.toString()).assertUserError("outputs one vector per token", bundle);
  }

  @Test
  void serveAnswersTheEmbeddingAsJsonNumbersAndAsRawFloats(@TempDir Path dir) throws Exception {
    Path model = model("dinov2", new EncoderFeatures(Output.POOLED, Mlp.GELU, false, true, 4));
    Path bundle = dir.resolve("bundle");
    CliRun e = CliRun.of("export", model.toString(), "--calib", calib.toString(), "--split", "1", "-o",
        bundle.toString(), "-q");
    assertEquals(0, e.exitCode(), e.err());
    byte[] body;
    float[] expected;
    try (InferenceSession device = InferenceSession.of(bundle.resolve("device.onnx"), SESSION);
        InferenceSession cloud = InferenceSession.of(bundle.resolve("cloud.onnx"), SESSION)) {
      Map<String, HostTensor> wire = device.run(Map.of(device.inputNames().get(0), randomImages(1, 23)),
          device.outputNames());
      body = wire.get(Bundle.TOKENS).bytes();
      String out = cloud.outputNames().get(0);
      expected = cloud.run(wire, List.of(out)).get(out).floats();
    }
    HttpClient http = HttpClient.newHttpClient();
    try (DecoderServer s = Vitq.serve(ServeRequest.of(bundle).withPort(0).withThreads(1))) {
      HttpResponse<String> json = http.send(request(s, "", null, body), HttpResponse.BodyHandlers.ofString());
      assertEquals(200, json.statusCode(), json.body());
      assertTrue(json.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
      JsonNode answer = JSON.readTree(json.body());
      assertEquals("embedding", answer.path("kind").asText());
      assertEquals(List.of(CONFIG.embedDim()), JSON.convertValue(answer.path("shape"), List.class));
      float[] numbers = new float[answer.path("embedding").size()];
      for (int i = 0; i < numbers.length; i++) {
        numbers[i] = (float) answer.path("embedding").get(i).asDouble();
      }
      assertArrayEquals(expected, numbers, "JSON numbers read back as the same float32");

      HttpResponse<byte[]> raw = http.send(request(s, "", "application/octet-stream", body),
          HttpResponse.BodyHandlers.ofByteArray());
      assertEquals(200, raw.statusCode());
      assertEquals("application/octet-stream", raw.headers().firstValue("Content-Type").orElse(""));
      assertEquals("" + CONFIG.embedDim(), raw.headers().firstValue(DecoderServer.SHAPE_HEADER).orElse(""));
      float[] floats = new float[raw.body().length / 4];
      ByteBuffer.wrap(raw.body()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(floats);
      assertEquals(4 * CONFIG.embedDim(), raw.body().length);
      assertArrayEquals(expected, floats, "raw little-endian float32, bit for bit");

      HttpResponse<String> k = http.send(request(s, "?k=3", null, body), HttpResponse.BodyHandlers.ofString());
      assertEquals(400, k.statusCode(), k.body());
      assertTrue(JSON.readTree(k.body()).path("error").asText().contains("no classifier"), k.body());
      HttpResponse<String> h = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port()
          + "/healthz")).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals("embedding", JSON.readTree(h.body()).path("answer").asText());
    }
  }

  private static HttpRequest request(DecoderServer s, String query, String accept, byte[] body) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/decode" + query))
        .header(DecoderServer.BUNDLE_HEADER, s.bundleSha256())
        .header("Content-Type", "application/octet-stream")
        .POST(HttpRequest.BodyPublishers.ofByteArray(body));
    if (accept != null) {
      b.header("Accept", accept);
    }
    return b.build();
  }

  private static HostTensor randomImages(int n, long seed) {
    float[] pixels = new float[n * 3 * 32 * 32];
    Random rng = new Random(seed);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) rng.nextGaussian();
    }
    return HostTensor.ofFloats(new long[] {n, 3, 32, 32}, pixels);
  }
}
