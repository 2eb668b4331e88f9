package dev.vitq.maven;

import dev.vitq.api.CheckRequest;
import dev.vitq.api.Vitq;
import dev.vitq.converter.check.CheckReport;
import dev.vitq.models.VitqException;
import java.io.File;
import java.util.Locale;
import java.util.stream.Collectors;
import org.apache.maven.plugin.MojoFailureException;
import org.apache.maven.plugins.annotations.LifecyclePhase;
import org.apache.maven.plugins.annotations.Mojo;
import org.apache.maven.plugins.annotations.Parameter;

/**
 * {@code vitq check} with a gate: which nodes of a model an execution provider would take, and a failed build when
 * they would split into more partitions than {@code maxPartitions} (each cut is a copy between the accelerator and
 * the CPU).
 */
@Mojo(name = "check", defaultPhase = LifecyclePhase.VERIFY, threadSafe = true)
public class CheckMojo extends VitqMojo {
  /** The model to check. */
  @Parameter(property = "vitq.checkModel", required = true)
  File model;

  /** The execution provider: qnn, nnapi, coreml or xnnpack. */
  @Parameter(property = "vitq.ep", required = true)
  String ep;

  /** The size a symbolic batch dimension is fixed to, as the device runs it; 0 checks the model as written. */
  @Parameter(property = "vitq.checkBatch", defaultValue = "1")
  int checkBatch;

  /** The most partitions the provider may split the model into; the build fails above it. */
  @Parameter(property = "vitq.maxPartitions")
  Integer maxPartitions;

  @Override
  void run() throws VitqException, MojoFailureException {
    CheckReport r = Vitq.check(new CheckRequest(model.toPath(), ep, checkBatch));
    getLog().info(String.format(Locale.ROOT, "vitq: %s on %s: %d of %d nodes in %d partitions", r.model(),
        r.provider(), r.supportedNodes(), r.nodes(), r.partitions()));
    String failed = gate(r, maxPartitions);
    if (failed != null) {
      throw new MojoFailureException(failed);
    }
  }

  /** The one line saying the model splits into too many partitions, or null when it does not. */
  static String gate(CheckReport r, Integer maxPartitions) {
    if (maxPartitions == null || r.partitions() <= maxPartitions) {
      return null;
    }
    String cpu = r.cpu().stream().limit(3).map(g -> g.op() + " (" + g.nodes() + ": " + g.reason() + ")")
        .collect(Collectors.joining(", "));
    return String.format(Locale.ROOT, "vitq check gate: %s splits into %d partitions on %s, more than maxPartitions "
        + "%d; the CPU takes %s.", r.model(), r.partitions(), r.ep(), maxPartitions, cpu);
  }
}
