package dev.vitq.api;

import dev.vitq.api.report.Reports;
import dev.vitq.converter.DemoModel;
import dev.vitq.converter.DynamicQuantization;
import dev.vitq.converter.HalfPrecision;
import dev.vitq.converter.ModelFiles;
import dev.vitq.converter.OrtDeploy;
import dev.vitq.converter.Provenance;
import dev.vitq.converter.Target;
import dev.vitq.models.Attribute;
import dev.vitq.models.DType;
import dev.vitq.models.Model;
import dev.vitq.models.Node;
import dev.vitq.models.Value;
import dev.vitq.models.VitqException;
import dev.vitq.models.canon.DeadCode;
import dev.vitq.models.canon.Float32;
import dev.vitq.models.vit.VitStructure;
import dev.vitq.quantizer.Scheme;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The quantize job for the schemes written without calibration ({@link Scheme#dataFree}): {@code w8-dynamic}
 * ({@link DynamicQuantization}) and {@code fp16} ({@link HalfPrecision}). No images are read and no plan is made, so
 * the options of calibration and search do not apply; those that would change the result are refused, and
 * {@code --calib} is accepted and not read (the command line says so).
 */
final class DataFreeQuantize {
  private DataFreeQuantize() {}

  static Reports.Quantize quantize(QuantizeRequest r, long t0) throws VitqException {
    String scheme = r.scheme().cliName();
    if (!r.search().equals("none")) {
      throw new VitqException("--search " + r.search() + " searches calibrated scales, and " + scheme
          + " has none; leave out --search.");
    }
    if (r.techniques() != null) {
      throw new VitqException("--quantizers chooses calibrated quantizers, and " + scheme + " has none; leave out "
          + "--quantizers.");
    }
    if (!r.target().equals(Target.CPU)) {
      throw new VitqException("--target " + r.target().cliName() + " writes a provider's QDQ form of calibrated "
          + "ranges, and " + scheme + " has none; leave out --target.");
    }
    if (r.planOut() != null) {
      throw new VitqException(scheme + " is written without calibration and has no plan; leave out --plan-out.");
    }
    if (r.reportDir() != null) {
      throw new VitqException("--report measures the quantized model on calibration images, which " + scheme
          + " does not read; measure it with vitq eval or vitq compare instead.");
    }
    LoadedModel.Source read = LoadedModel.Source.of(r.model(), r.seed(), r.preprocess());
    LoadedModel m = read.loaded();
    String source = read.source();
    String sha = read.sha256();
    VitStructure vit = m.vit();
    String name = r.model() == null ? DemoModel.NAME : ModelFiles.fileName(r.model());
    Model shipped;
    int layers;
    if (r.scheme() == Scheme.W8_DYNAMIC) {
      DynamicQuantization.Result q = DynamicQuantization.apply(m.model());
      if (q.layers() == 0) {
        throw new VitqException(name + " has no MatMul or Gemm with a constant float weight, so there is nothing to "
            + "quantize.");
      }
      layers = q.layers();
      shipped = Float32.withInterfaceOf(OrtDeploy.apply(q.model(), vit, vit == null ? 0 : vit.tokens()),
          m.original());
    } else {
      Optional<Node> nested = m.model().graph().nodes().stream().filter(n -> n.attributes().stream()
          .anyMatch(a -> a instanceof Attribute.GraphAttr || a instanceof Attribute.GraphsAttr)).findFirst();
      if (nested.isPresent()) {
        throw new VitqException("fp16 converts one graph, and " + name + "'s " + nested.get().opType() + " node '"
            + nested.get().name() + "' holds a graph of its own; convert it with w8-dynamic, or without the "
            + nested.get().opType() + ".");
      }
      Set<String> halfEdges = new HashSet<>();
      for (Value v : concat(m.original().graph().inputs(), m.original().graph().outputs())) {
        if (v.type() != null && v.type().dtype() == DType.FLOAT16) {
          halfEdges.add(v.name());
        }
      }
      Model half = DeadCode.apply(HalfPrecision.apply(m.model(), HalfPrecision.float32Outputs(vit), halfEdges));
      layers = (int) half.graph().initializers().stream().filter(t -> t.dtype() == DType.FLOAT16).count();
      shipped = half;
    }
    shipped = Provenance.stamp(shipped, Provenance.ofDataFree(source, sha, r.scheme(), layers));
    List<ModelFiles.Written> written = ModelFiles.writeDeployable(shipped, r.output(), r.format());
    return new Reports.Quantize(source, sha, written.get(0).path().toString(), written.get(0).bytes(), scheme, "none",
        "none", r.seed(), layers, 0, 0, 0, 0, (System.nanoTime() - t0) / 1_000_000, null, null,
        m.recognition().recognised(), m.recognition().reason(), null);
  }

  private static List<Value> concat(List<Value> a, List<Value> b) {
    List<Value> out = new ArrayList<>(a);
    out.addAll(b);
    return out;
  }
}
