package dev.vitq.cli;

import dev.vitq.api.Vitq;
import dev.vitq.models.VitqException;
import dev.vitq.server.DecoderServer;
import dev.vitq.server.ServeRequest;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code vitq serve BUNDLE [--port N] [--max-batch N] [--max-wait-ms N]}. */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description = {
        "Serve a bundle's cloud decoder over HTTP: POST /v1/decode takes one image's boundary bytes as the "
            + "manifest's wire section packs them (header " + DecoderServer.BUNDLE_HEADER + ": the SHA-256 of the "
            + "bundle's manifest.json) and answers the top classes as JSON, or, for a model without a classifier, "
            + "its embedding (JSON numbers, or raw little-endian float32 with Accept: application/octet-stream); "
            + "GET /healthz answers the bundle and counters.",
        "Concurrent requests share ONNX Runtime runs of up to --max-batch images. SIGTERM or Ctrl-C stops accepting "
            + "and answers the requests in flight before exiting."})
final class ServeCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "BUNDLE", description = "A bundle folder written by vitq export.")
  Path bundle;

  @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "ADDR",
      description = "Address to listen on (default: ${DEFAULT-VALUE}; 0.0.0.0 for every interface).")
  String host;

  @Option(names = "--port", defaultValue = "8080", paramLabel = "N",
      description = "Port (default: ${DEFAULT-VALUE}; 0 picks a free one).")
  int port;

  @Option(names = "--max-batch", defaultValue = "8", paramLabel = "N",
      description = "Most images decoded in one run (default: ${DEFAULT-VALUE}).")
  int maxBatch;

  @Option(names = "--max-wait-ms", defaultValue = "0", paramLabel = "N",
      description = "Longest a request waits for others to share its run (default: ${DEFAULT-VALUE}: requests "
          + "queued while a run goes share the next one, none waits longer).")
  int maxWait;

  @Option(names = "--queue", defaultValue = "256", paramLabel = "N",
      description = "Most requests admitted and not yet answered; more get 503 (default: ${DEFAULT-VALUE}).")
  int queue;

  @Option(names = "--max-body-bytes", defaultValue = "16777216", paramLabel = "N",
      description = "Largest request body read; larger get 413 (default: ${DEFAULT-VALUE}).")
  int maxBody;

  @Option(names = "--drain-seconds", defaultValue = "10", paramLabel = "N",
      description = "Longest a stop waits for requests in flight (default: ${DEFAULT-VALUE}).")
  int drain;

  @Mixin ThreadsOption threads;

  @Override
  public Integer call() throws VitqException, InterruptedException {
    ServeRequest r = ServeRequest.of(bundle).withHost(host).withPort(port).withMaxBatch(maxBatch)
        .withMaxWaitMillis(maxWait).withQueueLimit(queue).withMaxBodyBytes(maxBody).withDrainSeconds(drain)
        .withThreads(threads.get());
    DecoderServer server = Vitq.serve(r);
    onStopSignal(server);
    PrintWriter out = spec.commandLine().getOut();
    out.printf("vitq: serving %s (bundle %s, %,d bytes per image) on http://%s:%d (max batch %d, max wait %d ms)%n",
        bundle, server.bundleSha256(), server.bytesPerImage(), host, server.port(), maxBatch, maxWait);
    out.flush();
    server.awaitStop();
    return 0;
  }

  /**
   * SIGTERM and SIGINT (Ctrl-C) stop the server before the JVM shuts down: a shutdown hook would race ONNX Runtime's
   * own teardown, which ends the runs of requests still in flight, so the signals are taken over and the command
   * returns (exit code 0) once every admitted request is answered. Where the signals cannot be handled, a shutdown
   * hook is the fallback.
   */
  private static void onStopSignal(DecoderServer server) {
    Runnable stop = () -> Thread.ofPlatform().name("vitq-serve-stop").start(server::close);
    boolean handled = true;
    for (String name : new String[] {"TERM", "INT"}) {
      try {
        sun.misc.Signal.handle(new sun.misc.Signal(name), signal -> stop.run());
      } catch (IllegalArgumentException | UnsupportedOperationException e) {
        // This JVM or platform reserves the signal: the shutdown hook below stops the server instead.
        handled = false;
      }
    }
    if (!handled) {
      Runtime.getRuntime().addShutdownHook(new Thread(server::close, "vitq-serve-stop"));
    }
  }
}
