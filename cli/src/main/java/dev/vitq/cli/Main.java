package dev.vitq.cli;

import dev.vitq.calibration.InferenceSession;
import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine;

/** The {@code vitq} entry point: exit code 0 when done, 1 for unusable input, 2 for a wrong command line. */
public final class Main {
  static {
    // Library warnings (the dev.vitq logger: images skipped) print as one line, as vitq's other messages do.
    if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
      System.setProperty("java.util.logging.SimpleFormatter.format", "vitq: %5$s%n");
    }
  }

  private Main() {}

  public static void main(String[] args) {
    // An OutOfMemoryError in a thread the command does not wait for: one sentence instead of a trace, and exit code 1
    // at once, since the command cannot be trusted to finish.
    Thread.UncaughtExceptionHandler fallback = Thread.getDefaultUncaughtExceptionHandler();
    Thread.setDefaultUncaughtExceptionHandler((thread, e) -> {
      String sentence = outOfMemory(e, null);
      if (sentence != null) {
        System.err.println("vitq: " + sentence);
        System.err.flush();
        Runtime.getRuntime().halt(CommandLine.ExitCode.SOFTWARE);
      } else if (fallback != null) {
        fallback.uncaughtException(thread, e);
      } else {
        // A failure in a thread the command does not wait for is a bug, not the user's: one sentence, as onFailure.
        System.err.println("vitq: internal error in thread " + thread.getName() + " (" + e + "); set VITQ_DEBUG=1 "
            + "to see where, and please report it.");
        if (System.getenv("VITQ_DEBUG") != null) {
          e.printStackTrace();
        }
      }
    });
    System.exit(commandLine().execute(args));
  }

  /** The configured command line; tests drive it with {@code execute} and captured writers. */
  public static CommandLine commandLine() {
    CommandLine cmd = new CommandLine(new VitqCommand());
    cmd.setCaseInsensitiveEnumValuesAllowed(true);
    cmd.setExecutionStrategy(Main::execute);
    cmd.setExecutionExceptionHandler(Main::onFailure);
    cmd.setParameterExceptionHandler(Main::onUsageError);
    return cmd;
  }

  /** Runs the command; picocli hands exceptions to {@link #onFailure}, but errors (out of memory) pass by it. */
  private static int execute(CommandLine.ParseResult parsed) {
    try {
      return new CommandLine.RunLast().execute(parsed);
    } catch (OutOfMemoryError e) {
      CommandLine last = parsed.asCommandLineList().get(parsed.asCommandLineList().size() - 1);
      PrintWriter err = last.getErr();
      err.println("vitq: " + outOfMemory(e, last.getCommandSpec()));
      err.flush();
      return CommandLine.ExitCode.SOFTWARE;
    }
  }

  private static int onFailure(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
    PrintWriter err = cl.getErr();
    String memory = outOfMemory(ex, cl.getCommandSpec());
    if (memory != null) {
      err.println("vitq: " + memory);
    } else if (ex instanceof VitqException) {
      err.println("vitq: " + ex.getMessage());
    } else if (ex instanceof java.io.UncheckedIOException io) {
      err.println("vitq: " + io.getCause().getMessage());
    } else {
      err.println("vitq: internal error (" + ex + "); set VITQ_DEBUG=1 to see where, and please report it.");
      if (System.getenv("VITQ_DEBUG") != null) {
        ex.printStackTrace(err);
      }
    }
    err.flush();
    return CommandLine.ExitCode.SOFTWARE;
  }

  /**
   * The sentence for a failure that is running out of memory, Java's or ONNX Runtime's, naming what helps in
   * {@code command} (null: any command); null when the failure is something else.
   */
  static String outOfMemory(Throwable failure, CommandSpec command) {
    boolean batch = command != null && command.findOption("--batch") != null;
    String kind = null;
    for (Throwable t = failure; t != null; t = t.getCause()) {
      // A parallel stream rethrows a worker's error as a new one, without its message but with it as the cause.
      if (t instanceof OutOfMemoryError && (kind == null || t.getMessage() != null)) {
        kind = t.getMessage() == null ? "" : " (" + t.getMessage() + ")";
      }
    }
    if (kind != null) {
      long max = Runtime.getRuntime().maxMemory();
      long suggested = Math.max(2, (2 * max + (1L << 30) - 1) >> 30);
      return "Java ran out of memory" + kind + "; " + (batch ? "pass a smaller --batch, or " : "")
          + "give it more with VITQ_JAVA_OPTS=-Xmx" + suggested + "g (it may use " + String.format(java.util.Locale.ROOT,
          "%.1f", max / (double) (1L << 30)) + " GiB now).";
    }
    if (failure instanceof VitqException && InferenceSession.outOfMemory(failure)) {
      return failure.getMessage().replaceFirst("\\.$", "") + (batch ? "; pass a smaller --batch, or free memory."
          : "; free memory for it.");
    }
    return null;
  }

  private static int onUsageError(CommandLine.ParameterException ex, String[] args) {
    CommandLine cl = ex.getCommandLine();
    PrintWriter err = cl.getErr();
    err.println("vitq: " + ex.getMessage());
    err.println("Try '" + cl.getCommandSpec().qualifiedName() + " --help'.");
    err.flush();
    return CommandLine.ExitCode.USAGE;
  }
}
