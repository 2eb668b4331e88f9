package dev.vitq.models;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes files so that they appear complete or not at all: into a temporary sibling, then renamed over the target.
 * A failure leaves the target as it was and removes the temporary file.
 */
public final class AtomicFile {
  private AtomicFile() {}

  /** Writes the content of a file. */
  @FunctionalInterface
  public interface Content {
    void writeTo(OutputStream out) throws IOException;
  }

  /**
   * Writes {@code target} atomically.
   *
   * @throws VitqException if the folder is not writable or writing fails
   */
  public static void write(Path target, Content content) throws VitqException {
    Path tmp = temporarySibling(target);
    try {
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20)) {
        content.writeTo(out);
      }
      moveIntoPlace(tmp, target);
    } catch (IOException e) {
      deleteQuietly(tmp);
      throw new VitqException("Cannot write " + target + ": " + describe(e) + ".", e);
    } catch (RuntimeException | Error e) {
      deleteQuietly(tmp);
      throw e;
    }
  }

  /** Writes {@code bytes} to {@code target} atomically. */
  public static void write(Path target, byte[] bytes) throws VitqException {
    write(target, out -> out.write(bytes));
  }

  /** A fresh temporary name next to {@code target}, in the same folder so the final rename is atomic. */
  public static Path temporarySibling(Path target) throws VitqException {
    Path abs = target.toAbsolutePath();
    Path dir = abs.getParent();
    try {
      Files.createDirectories(dir);
      return Files.createTempFile(dir, "." + abs.getFileName() + ".", ".tmp");
    } catch (IOException e) {
      throw new VitqException("Cannot write into " + dir + ": " + describe(e) + ".", e);
    }
  }

  /** Renames a finished temporary file over its target. */
  public static void moveIntoPlace(Path tmp, Path target) throws IOException {
    // Temporary files are created owner-only; a finished output is an ordinary file (rw-r--r--).
    if (Files.getFileStore(tmp).supportsFileAttributeView(java.nio.file.attribute.PosixFileAttributeView.class)) {
      Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
    }
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /** Deletes a file or folder tree, ignoring failures: used only to clean up after another failure. */
  public static void deleteQuietly(Path path) {
    try {
      if (Files.isDirectory(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        try (var children = Files.list(path)) {
          children.forEach(AtomicFile::deleteQuietly);
        }
      }
      Files.deleteIfExists(path);
    } catch (IOException e) {
      // Nothing more can be done; the original failure is what the user needs to see.
    }
  }

  private static String describe(IOException e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }
}
