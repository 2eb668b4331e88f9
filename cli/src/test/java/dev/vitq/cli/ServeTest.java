package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vitq.api.Vitq;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.VitqException;
import dev.vitq.server.DecoderServer;
import dev.vitq.server.ServeRequest;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vitq serve}: a bundle's cloud decoder behind HTTP, on a small built model. */
class ServeTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir static Path shared;
  static Path bundle;
  /** Device outputs for a few random images, and the logits running cloud.onnx directly on them gives. */
  static List<byte[]> tokens = new ArrayList<>();
  static List<float[]> logits = new ArrayList<>();

  @BeforeAll
  static void exportBundle() throws Exception {
    Path model = CliFixtures.model(shared, 2);
    Path images = CliFixtures.images(shared.resolve("images"), 32, 3, 4, 2);
    bundle = shared.resolve("bundle");
    CliRun r = CliRun.of("export", model.toString(), "--calib", images.toString(), "--split", "1", "-o",
        bundle.toString(), "-q");
    assertEquals(0, r.exitCode(), r.err());
    InferenceSession.Config config = InferenceSession.Config.defaults().withThreads(1);
    try (InferenceSession device = InferenceSession.of(bundle.resolve("device.onnx"), config);
         InferenceSession cloud = InferenceSession.of(bundle.resolve("cloud.onnx"), config)) {
      Random rng = new Random(7);
      for (int i = 0; i < 6; i++) {
        float[] pixels = new float[3 * 32 * 32];
        for (int j = 0; j < pixels.length; j++) {
          pixels[j] = (float) rng.nextGaussian();
        }
        Map<String, HostTensor> wire = device.run(Map.of(device.inputNames().get(0),
            HostTensor.ofFloats(new long[] {1, 3, 32, 32}, pixels)), device.outputNames());
        tokens.add(wire.get("boundary_tokens").bytes());
        String out = cloud.outputNames().get(0);
        logits.add(cloud.run(wire, List.of(out)).get(out).floats());
      }
    }
  }

  private static DecoderServer start(ServeRequest r) throws VitqException {
    return Vitq.serve(r.withPort(0).withThreads(1));
  }

  private static HttpResponse<String> post(DecoderServer s, String query, String hash, byte[] body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/decode" + query))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body));
    if (hash != null) {
      b.header(DecoderServer.BUNDLE_HEADER, hash);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode health(DecoderServer s) throws Exception {
    HttpResponse<String> h = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port()
        + "/healthz")).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, h.statusCode(), h.body());
    return JSON.readTree(h.body());
  }

  private static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }

  @Test
  void answersWhatTheCloudModelComputesFromTheDevicesBytes() throws Exception {
    try (DecoderServer s = start(ServeRequest.of(bundle))) {
      JsonNode h = health(s);
      assertEquals("ok", h.path("status").asText());
      assertEquals(s.bundleSha256(), h.path("bundle_sha256").asText());
      assertEquals(tokens.get(0).length, h.path("bytes_per_image").asLong());
      for (int i = 0; i < tokens.size(); i++) {
        HttpResponse<String> r = post(s, "?k=3", s.bundleSha256(), tokens.get(i));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode top = JSON.readTree(r.body()).path("top");
        assertEquals(3, top.size());
        assertEquals(argmax(logits.get(i)), top.get(0).path("class").asInt());
        float[] expected = logits.get(i);
        double sum = 0;
        for (JsonNode c : top) {
          assertEquals(expected[c.path("class").asInt()], (float) c.path("logit").asDouble(), 1e-5f);
          sum += c.path("score").asDouble();
        }
        // All 3 classes asked for: their softmax scores add up to 1, in falling order.
        assertEquals(1.0, sum, 1e-6);
        assertTrue(top.get(0).path("score").asDouble() >= top.get(1).path("score").asDouble());
      }
    }
  }

  @Test
  void concurrentRequestsShareRunsAndEachGetsItsOwnAnswer() throws Exception {
    try (DecoderServer s = start(ServeRequest.of(bundle).withMaxBatch(8).withMaxWaitMillis(200))) {
      List<CompletableFuture<HttpResponse<String>>> sent = new ArrayList<>();
      for (int i = 0; i < 24; i++) {
        byte[] body = tokens.get(i % tokens.size());
        sent.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/decode?k=1"))
            .header(DecoderServer.BUNDLE_HEADER, s.bundleSha256()).POST(HttpRequest.BodyPublishers.ofByteArray(body))
            .build(), HttpResponse.BodyHandlers.ofString()));
      }
      for (int i = 0; i < sent.size(); i++) {
        HttpResponse<String> r = sent.get(i).get(30, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.body());
        float[] expected = logits.get(i % tokens.size());
        assertEquals(expected[argmax(expected)], (float) JSON.readTree(r.body()).path("top").get(0).path("logit")
            .asDouble(), 1e-5f, "request " + i);
      }
      JsonNode h = health(s);
      assertEquals(24, h.path("images_decoded").asLong());
      // 24 requests sent at once within a 200 ms window: batched, never more than 8 to a run.
      long runs = h.path("batches_run").asLong();
      assertTrue(runs >= 3 && runs < 24, "runs: " + runs);
    }
  }

  @Test
  void badRequestsGetOneSentenceAnd4xxAndTheServerCarriesOn() throws Exception {
    try (DecoderServer s = start(ServeRequest.of(bundle).withMaxBodyBytes(tokens.get(0).length * 2))) {
      byte[] ok = tokens.get(0);
      record Case(int status, HttpResponse<String> response) {}
      List<Case> cases = List.of(
          new Case(400, post(s, "", s.bundleSha256(), java.util.Arrays.copyOf(ok, ok.length - 1))),
          new Case(400, post(s, "", s.bundleSha256(), new byte[0])),
          new Case(413, post(s, "", s.bundleSha256(), new byte[ok.length * 3])),
          new Case(400, post(s, "", s.bundleSha256(), java.util.Arrays.copyOf(ok, ok.length + 5))),
          new Case(409, post(s, "", "0".repeat(64), ok)),
          new Case(400, post(s, "", null, ok)),
          new Case(400, post(s, "?k=0", s.bundleSha256(), ok)),
          new Case(400, post(s, "?k=two", s.bundleSha256(), ok)),
          new Case(404, HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v2/x"))
              .build(), HttpResponse.BodyHandlers.ofString())),
          new Case(405, HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/decode"))
              .build(), HttpResponse.BodyHandlers.ofString())),
          new Case(415, HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/decode"))
              .header(DecoderServer.BUNDLE_HEADER, s.bundleSha256()).header("Content-Type", "application/json")
              .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofString())));
      for (Case c : cases) {
        assertEquals(c.status(), c.response().statusCode(), c.response().body());
        String sentence = JSON.readTree(c.response().body()).path("error").asText();
        assertFalse(sentence.isEmpty(), c.response().body());
        assertTrue(sentence.endsWith(".") && !sentence.contains("Exception") && !sentence.contains("\n"), sentence);
      }
      assertTrue(JSON.readTree(cases.get(0).response().body()).path("error").asText()
          .contains("exactly " + ok.length));
      assertTrue(JSON.readTree(cases.get(3).response().body()).path("error").asText()
          .startsWith("The body has more than " + ok.length + " bytes"), cases.get(3).response().body());
      assertEquals(200, post(s, "", s.bundleSha256(), ok).statusCode());
    }
  }

  @Test
  void aFullQueueIsRefusedWith503() throws Exception {
    try (DecoderServer s = start(ServeRequest.of(bundle).withQueueLimit(2).withMaxBatch(100).withMaxWaitMillis(1500))) {
      List<CompletableFuture<HttpResponse<String>>> waiting = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        waiting.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/decode"))
            .header(DecoderServer.BUNDLE_HEADER, s.bundleSha256())
            .POST(HttpRequest.BodyPublishers.ofByteArray(tokens.get(i))).build(), HttpResponse.BodyHandlers.ofString()));
      }
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (health(s).path("in_flight").asInt() < 2 && System.nanoTime() < until) {
        Thread.sleep(10);
      }
      HttpResponse<String> third = post(s, "", s.bundleSha256(), tokens.get(2));
      assertEquals(503, third.statusCode(), third.body());
      for (var w : waiting) {
        assertEquals(200, w.get(30, TimeUnit.SECONDS).statusCode());
      }
    }
  }

  @Test
  void stoppingAnswersEveryRequestInFlightThenRefusesConnections() throws Exception {
    DecoderServer s = start(ServeRequest.of(bundle).withMaxBatch(100).withMaxWaitMillis(800));
    int port = s.port();
    List<CompletableFuture<HttpResponse<String>>> inFlight = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      inFlight.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/decode"))
          .header(DecoderServer.BUNDLE_HEADER, s.bundleSha256())
          .POST(HttpRequest.BodyPublishers.ofByteArray(tokens.get(i))).build(), HttpResponse.BodyHandlers.ofString()));
    }
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (health(s).path("in_flight").asInt() < 5 && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    s.close();
    for (var f : inFlight) {
      HttpResponse<String> r = f.get(30, TimeUnit.SECONDS);
      assertEquals(200, r.statusCode(), r.body());
    }
    var after = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/healthz")).build();
    Exception e = assertThrows(Exception.class, () -> HttpClient.newHttpClient().send(after,
        HttpResponse.BodyHandlers.ofString()));
    assertTrue(e instanceof ConnectException || e.getCause() instanceof ConnectException
        || e instanceof java.io.IOException, e.toString());
  }

  @Test
  void aBundleThatChangedOrIsMissingIsRefusedInOneSentence(@TempDir Path dir) throws Exception {
    VitqException missing = assertThrows(VitqException.class, () -> start(ServeRequest.of(dir.resolve("none"))));
    assertTrue(missing.getMessage().contains("not a vitq bundle"), missing.getMessage());
    CliRun r = CliRun.of("serve", dir.resolve("none").toString(), "--port", "0");
    assertEquals(1, r.exitCode());
    assertTrue(r.err().startsWith("vitq: ") && r.err().strip().lines().count() == 1, r.err());
    CliRun bad = CliRun.of("serve", bundle.toString(), "--max-batch", "0");
    assertEquals(1, bad.exitCode(), bad.err());
    assertTrue(bad.err().contains("--max-batch"), bad.err());
  }

  @Test
  void theWireFormatComesFromTheManifest(@TempDir Path dir) throws Exception {
    // A manifest whose boundary sends float32 tokens: the server takes 4 bytes an element and refuses NaN.
    Path copy = dir.resolve("b");
    Files.createDirectories(copy);
    for (String f : List.of("device.onnx", "cloud.onnx", "manifest.json")) {
      Files.copy(bundle.resolve(f), copy.resolve(f));
    }
    var manifest = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(copy.resolve("manifest.json")
        .toFile());
    var boundary = (com.fasterxml.jackson.databind.node.ObjectNode) manifest.get("boundary");
    boundary.put("bytes_per_image", 7);
    Files.writeString(copy.resolve("manifest.json"), JSON.writeValueAsString(manifest));
    VitqException wrong = assertThrows(VitqException.class, () -> start(ServeRequest.of(copy)));
    assertTrue(wrong.getMessage().contains("7 bytes per image"), wrong.getMessage());
    ((com.fasterxml.jackson.databind.node.ObjectNode) boundary.get("tensor")).put("dtype", "bfloat16");
    boundary.put("bytes_per_image", tokens.get(0).length);
    Files.writeString(copy.resolve("manifest.json"), JSON.writeValueAsString(manifest));
    VitqException dtype = assertThrows(VitqException.class, () -> start(ServeRequest.of(copy)));
    assertTrue(dtype.getMessage().contains("bfloat16"), dtype.getMessage());
    // Declared 6-bit codes: a byte of 64 or more is malformed.
    ((com.fasterxml.jackson.databind.node.ObjectNode) boundary.get("tensor")).put("dtype", "uint8")
        .put("bits", 6);
    boundary.put("wire_format", "vitq-boundary/9");
    Files.writeString(copy.resolve("manifest.json"), JSON.writeValueAsString(manifest));
    VitqException format = assertThrows(VitqException.class, () -> start(ServeRequest.of(copy)));
    assertTrue(format.getMessage().contains("vitq-boundary/9"), format.getMessage());
    boundary.put("wire_format", "vitq-boundary/1");
    Files.writeString(copy.resolve("manifest.json"), JSON.writeValueAsString(manifest));
    try (DecoderServer s = start(ServeRequest.of(copy))) {
      byte[] body = new byte[tokens.get(0).length];
      assertEquals(200, post(s, "", s.bundleSha256(), body).statusCode());
      body[5] = (byte) 200;
      HttpResponse<String> r = post(s, "", s.bundleSha256(), body);
      assertEquals(400, r.statusCode(), r.body());
      assertTrue(r.body().contains("6-bit"), r.body());
    }
  }

  @Test
  void theLoadGeneratorGetsEveryRequestAnsweredAtEachConcurrency() throws Exception {
    try (DecoderServer s = start(ServeRequest.of(bundle).withMaxBatch(8).withMaxWaitMillis(2))) {
      URI url = URI.create("http://127.0.0.1:" + s.port() + "/v1/decode");
      for (int c : new int[] {1, 8}) {
        LoadGenerator.Result r = LoadGenerator.run(url, s.bundleSha256(), (int) s.bytesPerImage(), c, 40, 30);
        assertEquals(40, r.requests(), r.line());
        assertEquals(40, r.ok(), r.line());
        assertTrue(r.p50Millis() > 0 && r.p50Millis() <= r.p99Millis(), r.line());
      }
    }
  }

  @Test
  void theCommandAnswersWhatItAdmittedWhenSentSigterm(@TempDir Path dir) throws Exception {
    // vitq serve as its own process: SIGTERM runs the shutdown hook, which must drain before the JVM exits.
    String javaBin = ProcessHandle.current().info().command().orElse("java");
    Process p = new ProcessBuilder(javaBin, "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), Main.class.getName(), "serve", bundle.toString(), "--port", "0",
        "--max-batch", "100", "--max-wait-ms", "1500", "--threads", "1").redirectError(dir.resolve("err").toFile())
        .start();
    try {
      String first = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream())).readLine();
      assertTrue(first != null && first.startsWith("vitq: serving "), String.valueOf(first));
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("http://127\\.0\\.0\\.1:(\\d+) ").matcher(first);
      assertTrue(m.find(), first);
      String base = "http://127.0.0.1:" + m.group(1);
      String sha = first.replaceAll(".*\\(bundle ([0-9a-f]{64}),.*", "$1");
      List<CompletableFuture<HttpResponse<String>>> inFlight = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        inFlight.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/decode"))
            .header(DecoderServer.BUNDLE_HEADER, sha).POST(HttpRequest.BodyPublishers.ofByteArray(tokens.get(i)))
            .build(), HttpResponse.BodyHandlers.ofString()));
      }
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (System.nanoTime() < until) {
        String h = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/healthz")).build(),
            HttpResponse.BodyHandlers.ofString()).body();
        if (JSON.readTree(h).path("in_flight").asInt() == 4) {
          break;
        }
        Thread.sleep(10);
      }
      p.destroy();
      for (var f : inFlight) {
        HttpResponse<String> r = f.get(30, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.body());
      }
      assertTrue(p.waitFor(30, TimeUnit.SECONDS), "vitq serve did not exit after SIGTERM");
      assertEquals(0, p.exitValue(), "a drained stop is a clean exit");
      String err = Files.readString(dir.resolve("err"));
      assertFalse(err.contains("Exception") || err.contains("\tat "), err);
    } finally {
      p.destroyForcibly();
    }
  }
}
