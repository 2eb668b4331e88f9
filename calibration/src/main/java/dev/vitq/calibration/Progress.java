package dev.vitq.calibration;

/**
 * Where long work reports how far it is. Library code calls it; the command line draws it as a progress bar.
 *
 * {@snippet lang="java" :
 * try (Progress.Task task = progress.start("calibrate", batches)) {
 *   for (...) { ...; task.advance(1); }
 * }
 * }
 */
public interface Progress {
  /** Reports nothing. */
  Progress NONE = (name, total) -> new Task() {
    @Override
    public void advance(long steps) {}

    @Override
    public void status(String text) {}

    @Override
    public void close() {}
  };

  /** Starts a task of {@code total} steps. */
  Task start(String name, long total);

  /** One running task. */
  interface Task extends AutoCloseable {
    /** Marks {@code steps} more steps done. */
    void advance(long steps);

    /** Shows a short status next to the bar ("loss 0.231"). */
    void status(String text);

    @Override
    void close();
  }
}
