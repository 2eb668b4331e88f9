package dev.vitq.models;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.Map;
import java.util.Random;

/** Runs a model's single float output in ONNX Runtime for differential tests. */
public final class OrtRunner {
  private OrtRunner() {}

  /** Seeded standard-normal pixels [batch, 3, size, size]. */
  public static float[] randomImages(int batch, int size, long seed) {
    return randomFloats(batch * 3 * size * size, seed);
  }

  /** {@code n} seeded standard-normal values. */
  public static float[] randomFloats(int n, long seed) {
    Random r = new Random(seed);
    float[] x = new float[n];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) r.nextGaussian();
    }
    return x;
  }

  /** Runs the model on {@code pixels} of shape {@code shape} and returns its first output, flattened. */
  public static float[] run(byte[] model, String input, float[] pixels, long[] shape) throws OrtException {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
      opts.setIntraOpNumThreads(2);
      try (OrtSession session = env.createSession(model, opts);
          OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(pixels), shape);
          OrtSession.Result result = session.run(Map.of(input, x))) {
        OnnxTensor y = (OnnxTensor) result.get(0);
        FloatBuffer fb = y.getFloatBuffer();
        float[] out = new float[fb.remaining()];
        fb.get(out);
        return out;
      }
    }
  }

  /** Largest absolute difference of two equally long arrays. */
  public static double maxAbsDiff(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new AssertionError("Lengths differ: " + a.length + " vs " + b.length);
    }
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }
}
