package dev.vitq.server;

import java.nio.file.Path;
import java.util.Objects;

/**
 * How the decoder server ({@code Vitq.serve}) runs a bundle's cloud decoder behind HTTP. Start from {@link #of}.
 *
 * {@snippet lang="java" :
 * try (DecoderServer server = Vitq.serve(ServeRequest.of(Path.of("bundle/")).withPort(8080).withMaxBatch(16))) {
 *   server.awaitStop();
 * }
 * }
 *
 * @param bundle the bundle folder written by {@code vitq export} ({@code Vitq.export})
 * @param host the address to listen on (loopback by default: put a proxy with TLS in front to expose it)
 * @param port the port (0: any free one; {@code DecoderServer.port()} says which)
 * @param maxBatch most images decoded in one ONNX Runtime run
 * @param maxWaitMillis longest a request waits for others to share its run
 * @param queueLimit most requests admitted and not yet answered; more get 503 at once
 * @param maxBodyBytes largest request body read; larger ones get 413 unread
 * @param threads ONNX Runtime intra-op threads (0: ONNX Runtime's choice)
 * @param drainSeconds longest a stop waits for requests in flight to be answered
 */
public record ServeRequest(Path bundle, String host, int port, int maxBatch, int maxWaitMillis, int queueLimit,
    int maxBodyBytes, int threads, int drainSeconds) {
  public ServeRequest {
    Objects.requireNonNull(bundle, "bundle");
    Objects.requireNonNull(host, "host");
  }

  /**
   * Loopback, port 8080, batches of up to 8 without waiting (requests queued while a run goes share the next one;
   * on CPU a longer wait only added latency, BENCHMARKS.md), 256 requests admitted, 16 MiB bodies, 10 s drain.
   */
  public static ServeRequest of(Path bundle) {
    return new ServeRequest(bundle, "127.0.0.1", 8080, 8, 0, 256, 16 << 20, 0, 10);
  }

  public ServeRequest withHost(String h) {
    return new ServeRequest(bundle, h, port, maxBatch, maxWaitMillis, queueLimit, maxBodyBytes, threads, drainSeconds);
  }

  public ServeRequest withPort(int n) {
    return new ServeRequest(bundle, host, n, maxBatch, maxWaitMillis, queueLimit, maxBodyBytes, threads, drainSeconds);
  }

  public ServeRequest withMaxBatch(int n) {
    return new ServeRequest(bundle, host, port, n, maxWaitMillis, queueLimit, maxBodyBytes, threads, drainSeconds);
  }

  public ServeRequest withMaxWaitMillis(int n) {
    return new ServeRequest(bundle, host, port, maxBatch, n, queueLimit, maxBodyBytes, threads, drainSeconds);
  }

  public ServeRequest withQueueLimit(int n) {
    return new ServeRequest(bundle, host, port, maxBatch, maxWaitMillis, n, maxBodyBytes, threads, drainSeconds);
  }

  public ServeRequest withMaxBodyBytes(int n) {
    return new ServeRequest(bundle, host, port, maxBatch, maxWaitMillis, queueLimit, n, threads, drainSeconds);
  }

  public ServeRequest withThreads(int n) {
    return new ServeRequest(bundle, host, port, maxBatch, maxWaitMillis, queueLimit, maxBodyBytes, n, drainSeconds);
  }

  public ServeRequest withDrainSeconds(int n) {
    return new ServeRequest(bundle, host, port, maxBatch, maxWaitMillis, queueLimit, maxBodyBytes, threads, n);
  }
}
