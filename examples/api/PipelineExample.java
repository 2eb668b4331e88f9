import dev.vitq.api.BenchRequest;
import dev.vitq.api.EvalRequest;
import dev.vitq.api.ExportRequest;
import dev.vitq.api.QuantizeRequest;
import dev.vitq.api.Vitq;
import dev.vitq.api.report.Reports;
import dev.vitq.calibration.Progress;
import dev.vitq.models.VitqException;
import dev.vitq.quantizer.Scheme;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model-build pipeline written against vitq's Java API: quantize the shared ViT to W8A8 (keeping the plan),
 * check it against the float model on the validation images, split the same plan into a device/cloud bundle and time
 * the bundle's halves. Exits 1 when the quantized model agrees with the float one on fewer than 97% of images.
 *
 * <p>Run from the repository root after {@code ./build -q package -DskipTests}, with the shared folder as argument:
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp "cli/target/vitq.jar:cli/target/lib/*" \
 *     examples/api/PipelineExample.java ../shared target/example
 * </pre>
 */
public class PipelineExample {
  public static void main(String[] args) throws Exception {
    Path shared = Path.of(args.length > 0 ? args[0] : "../shared");
    Path out = Path.of(args.length > 1 ? args[1] : "target/example");
    Path model = shared.resolve("models/vit-tiny-cifar10.onnx");
    if (!Files.isRegularFile(model)) {
      System.out.println("PipelineExample: skipped, " + model + " is absent (the shared model and images live in "
          + "../shared beside the checkout).");
      return;
    }
    Path calib = shared.resolve("data/cifar10/calib");
    Path val = shared.resolve("data/cifar10/val");
    Files.createDirectories(out);
    try {
      Reports.Quantize q = Vitq.quantize(QuantizeRequest.of(model, calib, out.resolve("vit-w8a8.onnx"))
          .withScheme(Scheme.W8A8).withPlanOut(out.resolve("w8a8.plan.json")), Progress.NONE);
      System.out.printf("quantized: %s, %,d bytes, calibrated in %.1f s%n", q.output(), q.bytes(),
          q.calibrationMillis() / 1000.0);

      Reports.Eval e = Vitq.evaluate(EvalRequest.of(Path.of(q.output()), val).withReference(model), Progress.NONE);
      System.out.printf("evaluated on %d images: top-1 %.4f, agreement with FP32 %.4f%n", e.images(), e.top1(),
          e.agreement());

      // The calibration images redo the plan's weight corrections and calibrate the boundary, which the W8A8 plan
      // leaves in float (its layer norms read the residual stream in float).
      Reports.Export x = Vitq.export(ExportRequest.of(model, calib, out.resolve("bundle-k6"), 6)
          .withPlan(out.resolve("w8a8.plan.json")), Progress.NONE);
      Reports.BundleBench b = Vitq.benchBundle(BenchRequest.of(Path.of(x.bundle())).withRuns(20));
      System.out.printf("bundle %s: %,d bytes per image; device %.2f ms, cloud %.2f ms (median of %d, batch 1)%n",
          x.bundle(), x.bytesPerImage(), b.deviceMedianMillis(), b.cloudMedianMillis(), b.runs());

      if (e.agreement() < 0.97) {
        System.err.printf("PipelineExample: agreement %.4f is below 0.97.%n", e.agreement());
        System.exit(1);
      }
    } catch (VitqException ex) {
      System.err.println("PipelineExample: " + ex.getMessage());
      System.exit(1);
    }
  }
}
