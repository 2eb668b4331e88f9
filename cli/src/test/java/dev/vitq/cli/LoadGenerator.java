package dev.vitq.cli;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A closed-loop load generator for {@code vitq serve}: {@code concurrency} clients each send a request, wait for its
 * answer and send the next, until {@code requests} have been sent or {@code seconds} have passed; then throughput and
 * latency percentiles. Bodies are seeded random boundary bytes (the decoder's cost does not depend on their values).
 * Loopback only: the URL must name 127.0.0.1 or localhost.
 *
 * <p>{@code java -cp ... dev.vitq.cli.LoadGenerator URL BUNDLE_SHA256 BYTES_PER_IMAGE CONCURRENCY REQUESTS SECONDS}
 */
final class LoadGenerator {
  /**
   * What one run measured.
   *
   * @param concurrency clients sending at once
   * @param requests requests answered (any status)
   * @param ok requests answered 200
   * @param seconds wall time from the first send to the last answer
   * @param p50Millis median latency
   * @param p99Millis 99th percentile latency
   */
  record Result(int concurrency, int requests, int ok, double seconds, double p50Millis, double p99Millis) {
    double perSecond() {
      return requests / seconds;
    }

    String line() {
      return String.format(Locale.ROOT, "{\"concurrency\": %d, \"requests\": %d, \"ok\": %d, \"seconds\": %.2f, "
          + "\"requests_per_second\": %.1f, \"p50_ms\": %.2f, \"p99_ms\": %.2f}", concurrency, requests, ok, seconds,
          perSecond(), p50Millis, p99Millis);
    }
  }

  private LoadGenerator() {}

  static Result run(URI url, String bundleSha256, int bytesPerImage, int concurrency, int requests, double seconds)
      throws Exception {
    String host = url.getHost();
    if (!host.equals("127.0.0.1") && !host.equals("localhost")) {
      throw new IllegalArgumentException("The load generator only sends to loopback, not " + host);
    }
    HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
    Random rng = new Random(0);
    List<byte[]> bodies = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      byte[] b = new byte[bytesPerImage];
      rng.nextBytes(b);
      bodies.add(b);
    }
    AtomicInteger next = new AtomicInteger();
    AtomicInteger ok = new AtomicInteger();
    long[] latencies = new long[requests];
    long start = System.nanoTime();
    long deadline = start + (long) (seconds * 1e9);
    try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> clients = new ArrayList<>();
      for (int c = 0; c < concurrency; c++) {
        clients.add(pool.submit(() -> {
          for (int i; (i = next.getAndIncrement()) < requests && System.nanoTime() < deadline; ) {
            HttpRequest r = HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(30))
                .header("X-Vitq-Bundle", bundleSha256).header("Content-Type", "application/octet-stream")
                .POST(HttpRequest.BodyPublishers.ofByteArray(bodies.get(i % bodies.size()))).build();
            long t = System.nanoTime();
            HttpResponse<byte[]> answer = client.send(r, HttpResponse.BodyHandlers.ofByteArray());
            latencies[i] = System.nanoTime() - t;
            if (answer.statusCode() == 200) {
              ok.incrementAndGet();
            }
          }
          return null;
        }));
      }
      for (Future<?> f : clients) {
        f.get();
      }
    }
    double wall = (System.nanoTime() - start) / 1e9;
    long[] done = Arrays.stream(latencies).filter(l -> l > 0).sorted().toArray();
    return new Result(concurrency, done.length, ok.get(), wall, percentile(done, 0.50), percentile(done, 0.99));
  }

  private static double percentile(long[] sorted, double q) {
    if (sorted.length == 0) {
      return Double.NaN;
    }
    int i = Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1);
    return sorted[Math.max(0, i)] / 1e6;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: LoadGenerator URL BUNDLE_SHA256 BYTES_PER_IMAGE CONCURRENCY REQUESTS SECONDS");
      System.exit(2);
    }
    URI url = URI.create(args[0]);
    int bytes = Integer.parseInt(args[2]);
    int concurrency = Integer.parseInt(args[3]);
    // Warm-up: the server's session and the client's connections, not timed.
    run(url, args[1], bytes, concurrency, Math.max(20, 2 * concurrency), 30);
    System.out.println(run(url, args[1], bytes, concurrency, Integer.parseInt(args[4]),
        Double.parseDouble(args[5])).line());
  }
}
