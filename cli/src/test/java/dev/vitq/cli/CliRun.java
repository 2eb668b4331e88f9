package dev.vitq.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** One run of the command line with captured output. */
record CliRun(int exitCode, String out, String err) {
  static CliRun of(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    var cmd = Main.commandLine();
    cmd.setOut(new PrintWriter(out, true));
    cmd.setErr(new PrintWriter(err, true));
    int code = cmd.execute(args);
    return new CliRun(code, out.toString(), err.toString());
  }

  /**
   * Asserts a user error: exit code 1, one line starting "vitq: " that contains {@code expected}, and neither
   * {@code mustNotExist} nor a temporary file beside it.
   */
  void assertUserError(String expected, Path mustNotExist) throws IOException {
    assertEquals(1, exitCode, out + err);
    assertTrue(err.startsWith("vitq: "), err);
    assertTrue(err.contains(expected), err);
    assertEquals(1, err.strip().lines().count(), "one line: " + err);
    assertFalse(Files.exists(mustNotExist), "no partial output");
    try (Stream<Path> s = Files.list(mustNotExist.getParent())) {
      assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary file left");
    }
  }
}
