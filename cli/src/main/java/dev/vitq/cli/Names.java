package dev.vitq.cli;

import dev.vitq.models.VitqException;
import java.util.function.Supplier;

/** The names options take (schemes, methods, quantizers, objectives): an unknown one is a user error. */
final class Names {
  private Names() {}

  /** Turns an unknown name into a user error. */
  static <T> T parse(Supplier<T> parser) throws VitqException {
    try {
      return parser.get();
    } catch (IllegalArgumentException e) {
      throw new VitqException(e.getMessage());
    }
  }
}
