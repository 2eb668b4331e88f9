package dev.vitq.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.vitq.calibration.HostTensor;
import dev.vitq.calibration.InferenceSession;
import dev.vitq.converter.Sha256;
import dev.vitq.models.VitqException;
import dev.vitq.split.Bundle;
import dev.vitq.split.WireFormat;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A bundle's cloud decoder behind HTTP (the JDK's server): {@code POST /v1/decode} takes one image's boundary bytes
 * as the manifest's wire section packs them ({@link WireFormat}) and answers the top classes with their softmax
 * scores, or, for a bundle whose model has no classifier, its output (the embedding) as JSON numbers or, when the
 * request accepts {@code application/octet-stream}, as raw little-endian float32; {@code GET /healthz} answers the
 * bundle's identity and counters.
 *
 * <p>Requests are handled on virtual threads; each valid one joins a bounded queue, and one decoder thread takes up
 * to {@code maxBatch} of them, waiting at most {@code maxWaitMillis} after the first, into one ONNX Runtime run (one
 * run at a time: ONNX Runtime already uses the cores within a run). Bad requests get a 4xx status and one sentence
 * as JSON; a full queue gets 503. {@link #close} stops accepting, answers every request already admitted, then frees
 * the session.
 */
public final class DecoderServer implements AutoCloseable {
  /** The request header that names the bundle a device encoded for: the SHA-256 of its manifest.json. */
  public static final String BUNDLE_HEADER = "X-Vitq-Bundle";
  private static final ObjectMapper JSON = new ObjectMapper();
  /** How long a request waits for its batch before the server gives up on it (only when the decoder is stuck). */
  private static final long ANSWER_TIMEOUT_SECONDS = 60;

  /** The media type of raw float32 answers (and of request bodies). */
  private static final String OCTETS = "application/octet-stream";
  /** The response header of a raw answer: the output's dimensions for one image, comma-separated. */
  public static final String SHAPE_HEADER = "X-Vitq-Shape";

  /**
   * One image's output from the cloud model.
   *
   * @param values its elements, row-major
   * @param dims its dimensions without the batch
   */
  private record Output(float[] values, long[] dims) {}

  /** One admitted request: its body, when it joined the queue, and where its output goes. */
  private record Job(byte[] body, long queuedNanos, CompletableFuture<Output> result) {}

  private final ServeRequest settings;
  private final WireFormat wire;
  private final String bundleSha256;
  private final List<String> labels;
  private final String outputKind;
  private final String output;
  private final InferenceSession session;
  private final HttpServer http;
  private final ExecutorService handlers;
  private final BlockingQueue<Job> queue;
  private final Semaphore admitted;
  private final Thread decoder;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final AtomicLong images = new AtomicLong();
  private final AtomicLong batches = new AtomicLong();
  private final AtomicLong rejected = new AtomicLong();
  private volatile boolean stopping;

  private DecoderServer(ServeRequest r, WireFormat wire, String sha, List<String> labels, String outputKind,
      String output, InferenceSession session) throws VitqException {
    this.settings = r;
    this.wire = wire;
    this.bundleSha256 = sha;
    this.labels = labels;
    this.outputKind = outputKind;
    this.output = output;
    this.session = session;
    this.queue = new ArrayBlockingQueue<>(r.queueLimit());
    this.admitted = new Semaphore(r.queueLimit());
    try {
      http = HttpServer.create(new InetSocketAddress(r.host(), r.port()), 0);
    } catch (BindException e) {
      throw new VitqException("Cannot listen on " + r.host() + ":" + r.port() + ": " + e.getMessage()
          + "; pick another --port.", e);
    } catch (IOException e) {
      throw new VitqException("Cannot listen on " + r.host() + ":" + r.port() + ": " + e.getMessage() + ".", e);
    }
    handlers = Executors.newVirtualThreadPerTaskExecutor();
    http.setExecutor(handlers);
    http.createContext("/", this::handle);
    decoder = Thread.ofPlatform().name("vitq-decoder").daemon(true).unstarted(this::decodeLoop);
  }

  /**
   * Reads the bundle (checking its files against the manifest), opens the cloud model and starts listening.
   *
   * @throws VitqException if the bundle or the settings cannot be used, or the port is taken
   */
  public static DecoderServer start(ServeRequest r) throws VitqException {
    if (r.maxBatch() < 1 || r.maxWaitMillis() < 0 || r.queueLimit() < 1 || r.maxBodyBytes() < 1
        || r.drainSeconds() < 0 || r.port() < 0 || r.port() > 65535) {
      throw new VitqException("Serve settings out of range: --max-batch and --queue must be at least 1, "
          + "--max-wait-ms and the drain time at least 0, --port 0 to 65535.");
    }
    Bundle.Loaded b = Bundle.read(r.bundle());
    WireFormat wire = WireFormat.of(b.manifest());
    if (wire.bytesPerImage() > r.maxBodyBytes()) {
      throw new VitqException("One image of this bundle is " + wire.bytesPerImage() + " bytes, more than the body "
          + "limit of " + r.maxBodyBytes() + ".");
    }
    String sha;
    try {
      sha = Sha256.of(Files.readAllBytes(r.bundle().resolve(Bundle.MANIFEST)));
    } catch (IOException e) {
      throw new VitqException("Cannot read the bundle manifest: " + e.getMessage() + ".", e);
    }
    List<String> labels = new ArrayList<>();
    b.manifest().path("labels").forEach(l -> labels.add(l.asText()));
    InferenceSession session = InferenceSession.of(b.cloud(),
        InferenceSession.Config.defaults().withThreads(r.threads()));
    try {
      List<String> expected = wire.tensors().stream().map(WireFormat.Tensor::name).sorted().toList();
      if (!expected.equals(session.inputNames().stream().sorted().toList())) {
        throw new VitqException("The cloud model takes " + session.inputNames() + ", but the manifest's boundary "
            + "names " + expected + ".");
      }
      String out = session.outputNames().get(0);
      DecoderServer s = new DecoderServer(r, wire, sha, List.copyOf(labels), b.outputKind(), out, session);
      s.decoder.start();
      s.http.start();
      return s;
    } catch (VitqException | RuntimeException e) {
      session.close();
      throw e;
    }
  }

  /** The port the server listens on. */
  public int port() {
    return http.getAddress().getPort();
  }

  /** The SHA-256 of the bundle's manifest, which requests must name in {@value #BUNDLE_HEADER}. */
  public String bundleSha256() {
    return bundleSha256;
  }

  /** Bytes one image's request body holds. */
  public long bytesPerImage() {
    return wire.bytesPerImage();
  }

  /** Blocks until {@link #close} has finished. */
  public void awaitStop() throws InterruptedException {
    stopped.await();
  }

  // ---- HTTP ----------------------------------------------------------------------------------------------------

  private void handle(HttpExchange ex) {
    try (ex) {
      String path = ex.getRequestURI().getPath();
      String method = ex.getRequestMethod();
      if (path.equals("/healthz")) {
        if (!method.equals("GET") && !method.equals("HEAD")) {
          refuse(ex, 405, "Use GET /healthz.");
        } else {
          send(ex, 200, health());
        }
      } else if (path.equals("/v1/decode")) {
        if (!method.equals("POST")) {
          refuse(ex, 405, "Use POST /v1/decode with one image's boundary bytes as the body.");
        } else {
          decode(ex);
        }
      } else {
        refuse(ex, 404, "No such path " + path + "; vitq serve answers POST /v1/decode and GET /healthz.");
      }
    } catch (IOException e) {
      // The client went away mid-answer: nothing to tell it, and the server carries on.
    } catch (RuntimeException e) {
      // Never leave a client without an answer, never let one request end the server.
      try {
        refuse(ex, 500, "Internal error (" + e.getClass().getSimpleName() + "); please report it.");
      } catch (IOException | RuntimeException ignored) {
        // The answer could not be sent either.
      }
    }
  }

  private void decode(HttpExchange ex) throws IOException {
    if (stopping) {
      refuse(ex, 503, "The server is shutting down.");
      return;
    }
    String sent = ex.getRequestHeaders().getFirst(BUNDLE_HEADER);
    if (sent == null) {
      refuse(ex, 400, "Name the bundle in the " + BUNDLE_HEADER + " header: the SHA-256 of its manifest.json, "
          + bundleSha256 + ".");
      return;
    }
    if (!sent.trim().equalsIgnoreCase(bundleSha256)) {
      refuse(ex, 409, "The request was encoded for bundle " + sent.trim() + ", but this server decodes bundle "
          + bundleSha256 + ".");
      return;
    }
    String type = ex.getRequestHeaders().getFirst("Content-Type");
    if (type != null && !type.startsWith("application/octet-stream")) {
      refuse(ex, 415, "Send the boundary bytes as application/octet-stream, not " + type + ".");
      return;
    }
    int k;
    try {
      k = topK(ex.getRequestURI().getRawQuery());
    } catch (IllegalArgumentException e) {
      refuse(ex, 400, e.getMessage());
      return;
    }
    if (!classifier() && k != 0) {
      refuse(ex, 400, "This bundle's model has no classifier: it answers its " + outputKind + ", so leave out k.");
      return;
    }
    byte[] body = readBody(ex);
    if (body == null) {
      refuse(ex, 413, "The body is larger than this server's limit of " + settings.maxBodyBytes() + " bytes; one "
          + "image takes " + wire.bytesPerImage() + ".");
      return;
    }
    String problem = wire.problem(body);
    if (problem != null) {
      refuse(ex, 400, problem);
      return;
    }
    if (!admitted.tryAcquire()) {
      rejected.incrementAndGet();
      ex.getResponseHeaders().set("Retry-After", "1");
      refuse(ex, 503, "The server holds its limit of " + settings.queueLimit() + " requests; retry shortly.");
      return;
    }
    Output result;
    try {
      Job job = new Job(body, System.nanoTime(), new CompletableFuture<>());
      queue.add(job);
      result = job.result().get(ANSWER_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      refuse(ex, 503, "The server is shutting down.");
      return;
    } catch (TimeoutException e) {
      refuse(ex, 503, "The decoder did not answer within " + ANSWER_TIMEOUT_SECONDS + " s; retry later.");
      return;
    } catch (ExecutionException e) {
      refuse(ex, 503, "Decoding failed: " + e.getCause().getMessage());
      return;
    } finally {
      admitted.release();
    }
    if (classifier()) {
      send(ex, 200, Answers.topClasses(result.values(), k == 0 ? 5 : k, labels));
    } else if (wantsOctets(ex)) {
      sendFloats(ex, result);
    } else {
      send(ex, 200, Answers.embedding(outputKind, result.dims(), result.values()));
    }
  }

  /** Whether the cloud's output is a classifier's logits (answered as the top classes). */
  private boolean classifier() {
    return outputKind.equals(Bundle.OUTPUT_LOGITS);
  }

  /** Whether the request's Accept header names raw bytes: then an embedding is answered as float32, not JSON. */
  private static boolean wantsOctets(HttpExchange ex) {
    List<String> accept = ex.getRequestHeaders().get("Accept");
    return accept != null && accept.stream().anyMatch(a -> a.toLowerCase(java.util.Locale.ROOT).contains(OCTETS));
  }

  /** The {@code k} of the query, or 0 when it names none. */
  private static int topK(String query) {
    int k = 0;
    if (query == null) {
      return k;
    }
    for (String part : query.split("&")) {
      String[] kv = part.split("=", 2);
      if (URLDecoder.decode(kv[0], StandardCharsets.UTF_8).equals("k")) {
        String v = kv.length > 1 ? URLDecoder.decode(kv[1], StandardCharsets.UTF_8) : "";
        try {
          k = Integer.parseInt(v);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("k must be a whole number of classes, got '" + v + "'.");
        }
        if (k < 1) {
          throw new IllegalArgumentException("k must be at least 1, got " + k + ".");
        }
      }
    }
    return k;
  }

  /**
   * The body, or null when it is larger than the limit. At most one byte more than an image is read: a longer body
   * is wrong whatever follows, so a client cannot make the server hold more than that per connection.
   */
  private byte[] readBody(HttpExchange ex) throws IOException {
    String length = ex.getRequestHeaders().getFirst("Content-Length");
    if (length != null) {
      try {
        if (Long.parseLong(length.trim()) > settings.maxBodyBytes()) {
          return null;
        }
      } catch (NumberFormatException e) {
        // The JDK server refuses such requests before they reach a handler; read the body as sent.
      }
    }
    try (InputStream in = ex.getRequestBody()) {
      byte[] body = in.readNBytes((int) Math.min(settings.maxBodyBytes(), wire.bytesPerImage()) + 1);
      return body.length > settings.maxBodyBytes() ? null : body;
    }
  }

  private Map<String, Object> health() {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("status", stopping ? "stopping" : "ok");
    out.put("bundle_sha256", bundleSha256);
    out.put("bytes_per_image", wire.bytesPerImage());
    out.put("wire", wire.describe());
    out.put("answer", classifier() ? "top classes" : outputKind);
    out.put("max_batch", settings.maxBatch());
    out.put("max_wait_ms", settings.maxWaitMillis());
    out.put("queue_limit", settings.queueLimit());
    out.put("in_flight", settings.queueLimit() - admitted.availablePermits());
    out.put("images_decoded", images.get());
    out.put("batches_run", batches.get());
    out.put("rejected_busy", rejected.get());
    return out;
  }

  private static void refuse(HttpExchange ex, int status, String sentence) throws IOException {
    send(ex, status, Map.of("error", sentence));
  }

  /** One image's output as raw little-endian float32, its dimensions in {@value #SHAPE_HEADER}. */
  private static void sendFloats(HttpExchange ex, Output o) throws IOException {
    byte[] bytes = Answers.float32(o.values());
    ex.getResponseHeaders().set("Content-Type", OCTETS);
    ex.getResponseHeaders().set(SHAPE_HEADER, Answers.dims(o.dims()));
    ex.sendResponseHeaders(200, bytes.length == 0 ? -1 : bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }

  private static void send(HttpExchange ex, int status, Map<String, Object> json) throws IOException {
    byte[] bytes = (JSON.writeValueAsString(json) + "\n").getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", "application/json");
    if (ex.getRequestMethod().equals("HEAD")) {
      ex.sendResponseHeaders(status, -1);
      return;
    }
    ex.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }

  // ---- batching ------------------------------------------------------------------------------------------------

  private void decodeLoop() {
    List<Job> batch = new ArrayList<>();
    while (true) {
      Job first;
      try {
        first = queue.poll(50, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        first = null;
      }
      if (first == null) {
        if (stopping && queue.isEmpty() && admitted.availablePermits() == settings.queueLimit()) {
          return;
        }
        continue;
      }
      batch.clear();
      batch.add(first);
      // The wait counts from when the first request joined the queue: one that already waited out a run is not
      // held longer, and those queued behind it join its run without waiting.
      long deadline = first.queuedNanos() + TimeUnit.MILLISECONDS.toNanos(settings.maxWaitMillis());
      while (batch.size() < settings.maxBatch()) {
        long left = deadline - System.nanoTime();
        Job next;
        try {
          next = left <= 0 ? queue.poll() : queue.poll(left, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          next = queue.poll();
        }
        if (next == null) {
          break;
        }
        batch.add(next);
      }
      run(batch);
    }
  }

  private void run(List<Job> batch) {
    try {
      HostTensor out = session.run(wire.feed(batch.stream().map(Job::body).toList()), List.of(output)).get(output);
      float[] all = out.floats();
      int per = all.length / batch.size();
      long[] dims = java.util.Arrays.copyOfRange(out.shape(), 1, out.shape().length);
      for (int i = 0; i < batch.size(); i++) {
        batch.get(i).result().complete(new Output(java.util.Arrays.copyOfRange(all, i * per, (i + 1) * per), dims));
      }
      batches.incrementAndGet();
      images.addAndGet(batch.size());
    } catch (VitqException | RuntimeException e) {
      for (Job j : batch) {
        j.result().completeExceptionally(e);
      }
    }
  }

  /**
   * Stops accepting connections, answers every request already admitted (waiting at most the drain time), stops the
   * decoder and frees the session. Idempotent.
   */
  @Override
  public synchronized void close() {
    if (stopped.getCount() == 0) {
      return;
    }
    stopping = true;
    // Waits for the exchanges in progress, which the decoder still answers.
    http.stop(settings.drainSeconds());
    try {
      decoder.join(TimeUnit.SECONDS.toMillis(Math.max(1, settings.drainSeconds())));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    handlers.shutdown();
    if (!decoder.isAlive()) {
      session.close();
    }
    stopped.countDown();
  }
}
