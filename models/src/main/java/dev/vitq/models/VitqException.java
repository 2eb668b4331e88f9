package dev.vitq.models;

import java.io.Serial;

/**
 * The one checked exception of vitq: the input (a model, an image folder, a plan, a flag's value) cannot be used.
 *
 * <p>The message is one sentence that names the problem and, where it helps, the fix; the command line prints it as
 * it is and exits with code 1. Anything else that escapes is a bug in vitq.
 */
public final class VitqException extends Exception {
  @Serial private static final long serialVersionUID = 1L;

  /**
   * @param message one sentence naming the problem
   */
  public VitqException(String message) {
    super(message);
  }

  /**
   * @param message one sentence naming the problem
   * @param cause what failed underneath, kept for debugging
   */
  public VitqException(String message, Throwable cause) {
    super(message, cause);
  }
}
