package dev.vitq.models.onnx;

import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.vitq.models.VitqException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads tensor data kept outside the model file, confined to the model's folder.
 *
 * <p>A hostile model can name any path; only relative paths that stay inside the folder, also after following
 * links, and that name a regular file are read, and only within the file's bounds.
 */
final class ExternalData {
  private ExternalData() {}

  static ByteBuffer read(TensorProto t, Path baseDir, String source, String what, long expectedBytes)
      throws VitqException {
    String location = null;
    long offset = 0;
    long length = -1;
    for (StringStringEntryProto e : t.getExternalDataList()) {
      switch (e.getKey()) {
        case "location" -> location = e.getValue();
        case "offset" -> offset = parseLong(e.getValue(), "offset", source, what);
        case "length" -> length = parseLong(e.getValue(), "length", source, what);
        default -> {} // "checksum" and future keys do not affect where the bytes are
      }
    }
    if (location == null || location.isEmpty()) {
      throw new VitqException(source + " keeps " + what + " in external data but names no file.");
    }
    if (baseDir == null) {
      throw new VitqException(source + " keeps " + what + " in external file '" + location
          + "', and external data can only be read from a model file on disk.");
    }
    Path file = resolve(location, baseDir, source, what);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (length < 0) {
        length = size - offset;
      }
      if (offset < 0 || length < 0 || offset > size || length > size - offset) {
        throw new VitqException(source + " reads " + what + " from bytes " + offset + ".." + (offset + length)
            + " of '" + location + "', which has only " + size + " bytes.");
      }
      if (length != expectedBytes) {
        throw new VitqException(source + " gives " + what + " " + length + " bytes of external data, but its shape"
            + " needs " + expectedBytes + ".");
      }
      return length == 0 ? ByteBuffer.allocate(0) : ch.map(FileChannel.MapMode.READ_ONLY, offset, length);
    } catch (IOException e) {
      throw new VitqException("Cannot read external data file '" + location + "' of " + source + ": "
          + e.getMessage() + ".", e);
    }
  }

  private static Path resolve(String location, Path baseDir, String source, String what) throws VitqException {
    Path rel;
    try {
      rel = Path.of(location);
    } catch (InvalidPathException e) {
      throw new VitqException(source + " keeps " + what + " in external file '" + location
          + "', which is not a valid path.");
    }
    if (rel.isAbsolute() || location.startsWith("/") || location.startsWith("\\") || location.contains(":")) {
      throw new VitqException(source + " keeps " + what + " in external file '" + location
          + "', an absolute path; external data must be inside the model's folder.");
    }
    try {
      Path base = baseDir.toRealPath();
      Path target = base.resolve(rel).normalize();
      if (!target.startsWith(base)) {
        throw new VitqException(source + " keeps " + what + " in external file '" + location
            + "', which is outside the model's folder.");
      }
      if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        throw new VitqException(source + " keeps " + what + " in external file '" + location
            + "', which does not exist.");
      }
      Path real = target.toRealPath();
      if (!real.startsWith(base)) {
        throw new VitqException(source + " keeps " + what + " in external file '" + location
            + "', a link that leads outside the model's folder.");
      }
      if (!Files.isRegularFile(real)) {
        throw new VitqException(source + " keeps " + what + " in external file '" + location
            + "', which is not a regular file.");
      }
      return real;
    } catch (IOException e) {
      throw new VitqException("Cannot resolve external data file '" + location + "' of " + source + ": "
          + e.getMessage() + ".", e);
    }
  }

  private static long parseLong(String text, String key, String source, String what) throws VitqException {
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new VitqException(source + " gives " + what + " an external data " + key + " of '" + text
          + "', which is not a number.");
    }
  }
}
