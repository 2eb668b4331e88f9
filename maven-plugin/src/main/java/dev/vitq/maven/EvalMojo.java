package dev.vitq.maven;

import dev.vitq.api.EvalRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import java.io.File;
import java.util.Locale;
import org.apache.maven.plugin.MojoFailureException;
import org.apache.maven.plugins.annotations.LifecyclePhase;
import org.apache.maven.plugins.annotations.Mojo;
import org.apache.maven.plugins.annotations.Parameter;

/**
 * {@code vitq eval} with a quality gate: measures top-1 and agreement with a reference (or, for an embedding model,
 * output cosine with the reference), and fails the build in one line when a measure is below its minimum.
 */
@Mojo(name = "eval", defaultPhase = LifecyclePhase.PACKAGE, threadSafe = true)
public class EvalMojo extends VitqMojo {
  /** The model to evaluate (or set bundle). */
  @Parameter(property = "vitq.evalModel")
  File model;

  /** A bundle folder to evaluate device then cloud, instead of a model. */
  @Parameter(property = "vitq.evalBundle")
  File bundle;

  /** Labelled images: class sub-folders in sorted order give the labels. */
  @Parameter(property = "vitq.data", required = true)
  File data;

  /** The reference (float) model agreement is measured against. */
  @Parameter(property = "vitq.ref")
  File ref;

  /** The least share of images whose top-1 class equals the reference's; the build fails below it. */
  @Parameter(property = "vitq.minAgreement")
  Double minAgreement;

  /** The least top-1 accuracy; the build fails below it. */
  @Parameter(property = "vitq.minTop1")
  Double minTop1;

  /**
   * For an embedding model: the least mean cosine similarity of each image's output with the reference's; the build
   * fails below it.
   */
  @Parameter(property = "vitq.minCosine")
  Double minCosine;

  @Override
  void run() throws VitqException, MojoFailureException {
    if ((model == null) == (bundle == null)) {
      throw new VitqException("Set <model> or <bundle>, one of them.");
    }
    if (minAgreement != null && ref == null) {
      throw new VitqException("<minAgreement> needs <ref>, the model to agree with.");
    }
    if (minCosine != null && ref == null) {
      throw new VitqException("<minCosine> needs <ref>, the float model whose outputs to compare with.");
    }
    EvalRequest r = (bundle != null ? EvalRequest.ofBundle(bundle.toPath(), data.toPath())
        : EvalRequest.of(model.toPath(), data.toPath())).withReference(path(ref)).withPreprocess(preprocess())
        .withThreads(threads).withBatchSize(batch);
    Reports.Eval e = Vitq.evaluate(r, Progress.NONE, path(report));
    if (e.embedding() != null) {
      getLog().info(String.format(Locale.ROOT, "vitq: %s on %d images: cosine mean %s, 1st percentile %s, retrieval "
          + "agreement %s", e.model(), e.images(), format(e.embedding().cosineMean()), format(e.embedding().cosineP1()),
          format(e.embedding().retrievalAgreement())));
    } else {
      getLog().info(String.format(Locale.ROOT, "vitq: %s on %d images: top-1 %s, agreement %s", e.model(),
          e.images(), format(e.top1()), format(e.agreement())));
    }
    String failed = gate(e, minTop1, minAgreement, minCosine);
    if (failed != null) {
      throw new MojoFailureException(failed);
    }
  }

  /** The one line saying which minimum the evaluation fell below, or null when it meets them. */
  static String gate(Reports.Eval e, Double minTop1, Double minAgreement, Double minCosine) {
    Double cosine = e.embedding() == null ? null : e.embedding().cosineMean();
    if (minCosine != null && (cosine == null || cosine < minCosine)) {
      return String.format(Locale.ROOT, "vitq quality gate: output cosine %s of %s with %s is below minCosine %.4f%s.",
          format(cosine), e.model(), e.reference(), minCosine,
          e.embedding() == null ? " (it is measured on embedding models; this one is a classifier)" : "");
    }
    if (minTop1 != null && (e.top1() == null || e.top1() < minTop1)) {
      return String.format(Locale.ROOT, "vitq quality gate: top-1 %s of %s is below minTop1 %.4f.", format(e.top1()),
          e.model(), minTop1);
    }
    if (minAgreement != null && (e.agreement() == null || e.agreement() < minAgreement)) {
      return String.format(Locale.ROOT, "vitq quality gate: agreement %s of %s with %s is below minAgreement %.4f.",
          format(e.agreement()), e.model(), e.reference(), minAgreement);
    }
    return null;
  }

  private static String format(Double v) {
    return v == null ? "n/a" : String.format(Locale.ROOT, "%.4f", v);
  }
}
