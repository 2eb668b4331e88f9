package dev.vitq.models.canon;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.vitq.models.Model;
import dev.vitq.models.OrtRunner;
import dev.vitq.models.Value;
import dev.vitq.models.onnx.LocalFunctions;
import dev.vitq.models.onnx.OnnxReader;
import dev.vitq.models.onnx.OnnxWriter;
import dev.vitq.models.vit.Recognition;
import dev.vitq.models.vit.VitRecognizer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The measurement behind canonicalising with our own passes rather than ONNX Runtime's basic-level graph optimizer
 * (BENCHMARKS.md, "Canonicalisation"): for each model given, the nodes and Shape nodes each leaves, whether the ViT
 * is recognised afterwards, the time each takes, and whether the rewritten model still computes the original's
 * outputs in ONNX Runtime. Run by {@code scripts/canonicalisation-comparison}; not a test.
 */
public final class OrtBasicComparison {
  private OrtBasicComparison() {}

  public static void main(String[] args) throws Exception {
    OrtEnvironment env = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL, "comparison");
    System.out.println("| model | nodes | ORT basic: nodes / Shape left | recognised | ms | vitq: nodes / Shape left"
        + " | recognised | ms | same outputs (ORT basic / vitq) |");
    System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (String arg : args) {
      Path file = Path.of(arg);
      Model original = OnnxReader.read(file);
      Path optimized = Files.createTempFile("ort-basic", ".onnx");
      long t0 = System.nanoTime();
      try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
        o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
        o.setOptimizedModelFilePath(optimized.toString());
        o.setIntraOpNumThreads(1);
        env.createSession(file.toString(), o).close();
      }
      long t1 = System.nanoTime();
      Model ort = OnnxReader.read(optimized);
      Recognition ortRecognition = VitRecognizer.recognize(ort, file.getFileName().toString());
      Files.deleteIfExists(optimized);
      long t2 = System.nanoTime();
      Model ours = Canonicalizer.apply(Float32.apply(LocalFunctions.inline(original, arg)), 0, 0);
      Recognition ourRecognition = VitRecognizer.recognize(ours, file.getFileName().toString());
      long t3 = System.nanoTime();
      System.out.printf("| %s | %d | %d / %d | %s | %.0f | %d / %d | %s | %.0f | %s / %s |%n", file.getFileName(),
          original.graph().nodes().size(), ort.graph().nodes().size(), shapes(ort), yes(ortRecognition),
          (t1 - t0) / 1e6, ours.graph().nodes().size(), shapes(ours), yes(ourRecognition), (t3 - t2) / 1e6,
          same(original, ort, ours), same(original, ours, ours));
    }
  }

  private static long shapes(Model m) {
    return m.graph().nodes().stream().filter(n -> n.is("Shape")).count();
  }

  private static String yes(Recognition r) {
    return r.recognised() ? "yes" : "no: " + r.reason().substring(r.reason().indexOf(':') + 2).replace("|", "/");
  }

  /**
   * Whether a model gives the same first output as the original (within 1e-5) on a seeded batch of two images of
   * the size the canonical graph fixed.
   */
  private static String same(Model original, Model rewritten, Model canonical) {
    if (original.graph().inputs().get(0).type().dtype() != dev.vitq.models.DType.FLOAT) {
      return "not run (float16 input)";
    }
    try {
      String in = original.graph().inputs().get(0).name();
      var dims = canonical.graph().inputs().get(0).type().shape();
      long[] shape = new long[dims.size()];
      for (int i = 0; i < shape.length; i++) {
        // Unknown dimensions: a batch of two, three colour channels.
        shape[i] = dims.get(i).isFixed() ? dims.get(i).size() : i == 1 ? 3 : 2;
      }
      int n = 1;
      for (long d : shape) {
        n *= (int) d;
      }
      float[] x = OrtRunner.randomFloats(n, 1);
      double diff = OrtRunner.maxAbsDiff(OrtRunner.run(OnnxWriter.toBytes(original), in, x, shape),
          OrtRunner.run(OnnxWriter.toBytes(rewritten), in, x, shape));
      return diff <= 1e-5 ? "yes" : String.format("no (%.1e)", diff);
    } catch (Exception e) {
      return "not run (" + e.getClass().getSimpleName() + ")";
    }
  }
}
