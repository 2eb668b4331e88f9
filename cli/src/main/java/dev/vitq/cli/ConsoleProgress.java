package dev.vitq.cli;

import dev.vitq.calibration.Progress;
import java.io.PrintStream;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** Progress bars on standard error, drawn only when it is a terminal (logs and pipes stay clean). */
final class ConsoleProgress implements Progress {
  private final PrintStream err;

  private ConsoleProgress(PrintStream err) {
    this.err = err;
  }

  /** Bars when standard error is an interactive terminal and {@code quiet} is off; otherwise nothing. */
  static Progress forTerminal(boolean quiet) {
    return quiet || !interactive() ? Progress.NONE : new ConsoleProgress(System.err);
  }

  @Override
  public Task start(String name, long total) {
    ProgressBar bar = new ProgressBarBuilder()
        .setTaskName(name)
        .setInitialMax(total)
        .setStyle(ProgressBarStyle.ASCII)
        .setUpdateIntervalMillis(200)
        .setConsumer(new ConsoleProgressBarConsumer(err))
        .continuousUpdate()
        .build();
    return new Task() {
      @Override
      public void advance(long steps) {
        bar.stepBy(steps);
      }

      @Override
      public void status(String text) {
        bar.setExtraMessage(" " + text);
      }

      @Override
      public void close() {
        bar.close();
      }
    };
  }

  /**
   * Whether the console is a terminal. Since JDK 22 {@code System.console()} exists even when output is redirected,
   * and {@code Console.isTerminal()} tells; on JDK 21 a console exists only for a terminal.
   */
  private static boolean interactive() {
    var console = System.console();
    if (console == null) {
      return false;
    }
    try {
      return (Boolean) console.getClass().getMethod("isTerminal").invoke(console);
    } catch (ReflectiveOperationException e) {
      return true;
    }
  }
}
