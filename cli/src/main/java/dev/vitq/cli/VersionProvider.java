package dev.vitq.cli;

import dev.vitq.api.Vitq;
import picocli.CommandLine;

/** The version Maven stamped into the build. */
final class VersionProvider implements CommandLine.IVersionProvider {
  @Override
  public String[] getVersion() {
    return new String[] {"vitq " + Vitq.version()};
  }
}
