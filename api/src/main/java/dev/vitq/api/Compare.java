package dev.vitq.api;

import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.converter.ModelFiles;
import dev.vitq.models.VitqException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The compare job: the eval and bench measures of several models on the same images and machine, in one run. */
final class Compare {
  private Compare() {}

  /**
   * Measures the reference and each model on the same images and machine, in one run: top-1, agreement with the
   * reference, file size, batch-1 latency and batch-32 time (the table of BENCHMARKS.md).
   *
   * @throws VitqException if a model or the images cannot be used
   */
  static Reports.Compare compare(CompareRequest r, Progress progress) throws VitqException {
    if (r.runs() < 5) {
      throw new VitqException("--runs must be at least 5, got " + r.runs() + ".");
    }
    List<Path> all = new ArrayList<>();
    all.add(r.reference());
    all.addAll(r.models());
    List<Reports.Eval> evals = Evaluate.evaluateAll(all, EvalRequest.of(r.reference(), r.data())
        .withReference(r.reference()).withThreads(r.threads()), progress);
    List<Reports.Compare.Row> rows = new ArrayList<>();
    for (int i = 0; i < all.size(); i++) {
      Path m = all.get(i);
      BenchRequest bench = BenchRequest.of(m).withThreads(r.threads());
      Reports.Bench b1 = Bench.bench(bench.withRuns(r.runs()));
      Reports.Bench b32 = Bench.bench(bench.withBatch(32).withRuns(Math.max(5, r.runs() / 5)));
      rows.add(new Reports.Compare.Row(ModelFiles.fileName(m), evals.get(i).top1(), evals.get(i).agreement(),
          ModelFiles.sizeOf(m), b1.medianMillis(), b32.medianMillis(), evals.get(i).embedding()));
    }
    return new Reports.Compare(rows);
  }
}
