package dev.vitq.converter;

import dev.vitq.models.VitqException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 in lower-case hex: how plans, manifests and bundle requests name the files they are tied to. */
public final class Sha256 {
  private Sha256() {}

  /**
   * The hash of a file's bytes, read in chunks.
   *
   * @throws VitqException if the file cannot be read
   */
  public static String of(Path file) throws VitqException {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest d = digest();
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        d.update(buf, 0, n);
      }
      return HexFormat.of().formatHex(d.digest());
    } catch (IOException e) {
      throw new VitqException("Cannot read " + file + ": " + e.getMessage() + ".", e);
    }
  }

  /** The hash of {@code bytes}. */
  public static String of(byte[] bytes) {
    return HexFormat.of().formatHex(digest().digest(bytes));
  }

  private static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("Every JDK has SHA-256", e);
    }
  }
}
