package dev.vitq.cli;

import dev.vitq.models.VitqException;
import java.io.PrintWriter;
import picocli.CommandLine;

/** The {@code vitq} entry point: exit code 0 when done, 1 for unusable input, 2 for a wrong command line. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The configured command line; tests drive it with {@code execute} and captured writers. */
  public static CommandLine commandLine() {
    CommandLine cmd = new CommandLine(new VitqCommand());
    cmd.setCaseInsensitiveEnumValuesAllowed(true);
    cmd.setExecutionExceptionHandler(Main::onFailure);
    cmd.setParameterExceptionHandler(Main::onUsageError);
    return cmd;
  }

  private static int onFailure(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
    PrintWriter err = cl.getErr();
    if (ex instanceof VitqException) {
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

  private static int onUsageError(CommandLine.ParameterException ex, String[] args) {
    CommandLine cl = ex.getCommandLine();
    PrintWriter err = cl.getErr();
    err.println("vitq: " + ex.getMessage());
    err.println("Try '" + cl.getCommandSpec().qualifiedName() + " --help'.");
    err.flush();
    return CommandLine.ExitCode.USAGE;
  }
}
