package dev.vitq.api.report;

import java.util.List;

/** The results the API returns; each renders as the {@code --json} output of its command. */
public final class Reports {
  private Reports() {}

  /**
   * What {@code Vitq.quantize} did.
   *
   * @param source the float model (its path, or the demo's name)
   * @param sourceSha256 the float model's SHA-256
   * @param output the quantized model
   * @param bytes the quantized model's size
   * @param scheme the scheme's name
   * @param method the method's name
   * @param search the search's name
   * @param seed the seed
   * @param quantizedTensors how many tensors the plan quantizes
   * @param calibrationImages images calibration used
   * @param skippedImages unreadable images skipped
   * @param calibrationMillis time spent calibrating
   * @param searchMillis time spent searching
   * @param totalMillis time from start to the written file
   * @param plan where the plan was written, or null
   * @param searchReport what the search did, or null without one
   * @param recognised whether the model was recognised as a ViT (else it was quantized generically)
   * @param notRecognisedReason why it was not, or null
   * @param auto what the mixed-precision search ({@code --scheme auto}) found, or null without it
   * @param budget what the accuracy budget ({@code --max-drop}) raised, or null without one
   */
  public record Quantize(String source, String sourceSha256, String output, long bytes, String scheme, String method,
      String search, long seed, int quantizedTensors, int calibrationImages, int skippedImages,
      long calibrationMillis, long searchMillis, long totalMillis, String plan, Search searchReport,
      boolean recognised, String notRecognisedReason, Auto auto, Budget budget) {

    /** Without an accuracy budget. */
    public Quantize(String source, String sourceSha256, String output, long bytes, String scheme, String method,
        String search, long seed, int quantizedTensors, int calibrationImages, int skippedImages,
        long calibrationMillis, long searchMillis, long totalMillis, String plan, Search searchReport,
        boolean recognised, String notRecognisedReason, Auto auto) {
      this(source, sourceSha256, output, bytes, scheme, method, search, seed, quantizedTensors, calibrationImages,
          skippedImages, calibrationMillis, searchMillis, totalMillis, plan, searchReport, recognised,
          notRecognisedReason, auto, null);
    }
  }

  /**
   * What an accuracy budget ({@code --max-drop}) did: the starting point measured on the held-out images, each part
   * raised, and the point shipped.
   *
   * @param maxDrop the largest drop allowed
   * @param measure what is measured: {@code top-1} (a classifier on labelled images; the drop is the float model's
   *     top-1 minus the quantized one's), {@code agreement} (a classifier on unlabelled images: of the top-1 class
   *     with the float model's; the drop is 1 minus it) or {@code mean cosine} (an embedding model: of each output
   *     with the float model's; the drop is 1 minus it)
   * @param heldOut the held-out image folder
   * @param images images measured (a seeded sample when limited)
   * @param floatScore the float model's measure (1 for agreement and mean cosine)
   * @param start the point raising started from: a uniform scheme, or the mixed-precision point chosen
   * @param startBytes its size
   * @param startScore its measure
   * @param startDrop its drop
   * @param bytes the shipped model's size
   * @param score the shipped model's measure
   * @param drop the shipped model's drop
   * @param raised the parts raised, in order
   * @param overBytes raises tried and left out because the model would pass {@code --max-bytes}
   * @param evaluations passes over the held-out images (the float model's included)
   * @param seconds wall time of the raising, measures included
   */
  public record Budget(double maxDrop, String measure, String heldOut, int images, double floatScore, String start,
      long startBytes, double startScore, double startDrop, long bytes, double score, double drop, List<Raise> raised,
      int overBytes, int evaluations, double seconds) {
    public Budget {
      raised = List.copyOf(raised);
    }
  }

  /**
   * One part raised by an accuracy budget.
   *
   * @param part "embedding", "block N" (1-based) or "head"
   * @param to "activations to 8 bits", "weights to 8 bits" or "float"
   * @param sqnrDb the part's SQNR alone before it was raised (the lowest of the parts left: why it was chosen)
   * @param bytes the model's size after
   * @param score the model's measure after
   * @param drop the model's drop after
   */
  public record Raise(String part, String to, double sqnrDb, long bytes, double score, double drop) {}

  /**
   * What the mixed-precision search found.
   *
   * @param maxBytes the size budget
   * @param maxLatencyMillis the latency budget, or null
   * @param shipped the name of the front point shipped
   * @param front the Pareto front, by bytes
   * @param uniform the uniform schemes the search started from: loss on the search images and exact bytes
   * @param evaluations candidates scored
   * @param searchImages images the loss is measured on
   * @param heldOutImages calibration images the agreement is measured on
   * @param searchSeconds wall time of the search and of measuring the front
   * @param fp32PassSeconds wall time of one float pass over the calibration set
   * @param costRatio search time in float passes
   */
  public record Auto(long maxBytes, Double maxLatencyMillis, String shipped, List<FrontPoint> front,
      List<FrontPoint> uniform, long evaluations, int searchImages, int heldOutImages, double searchSeconds,
      double fp32PassSeconds, double costRatio) {}

  /**
   * One point of a mixed-precision front.
   *
   * @param name its bits (weights of each block's linear layers, then activations of the embedding, each block and
   *     the head), or the uniform scheme it equals
   * @param bytes the exact size of its model
   * @param loss InfoNCE against the float model on the search images
   * @param latencyMillis median batch-1 latency on this machine, or null when not measured
   * @param heldOutAgreement top-1 agreement with the float model on held-out calibration images, or null
   * @param withinBudget whether it meets the size and latency budgets
   */
  public record FrontPoint(String name, long bytes, double loss, Double latencyMillis, Double heldOutAgreement,
      boolean withinBudget) {}

  /**
   * What the evolq search did.
   *
   * @param strategy evolution or random
   * @param objective the loss it minimised
   * @param genes what one gene scaled: tensor or channel
   * @param inputs what the loss was measured on: blends or calibration images
   * @param blockVisits block visits made
   * @param blocksChanged visits that changed a block's scales
   * @param lossBefore loss of the calibrated plan on the search batch
   * @param lossAfter loss of the searched plan on the search batch
   * @param heldOutAgreementBefore top-1 agreement with the float model on held-out calibration images, before
   * @param heldOutAgreementAfter the same after
   * @param searchImages images the loss was measured on
   * @param heldOutImages images the agreement was measured on
   * @param evaluations candidates evaluated
   * @param searchSeconds wall time of the search
   * @param fp32PassSeconds wall time of one float pass over the calibration set
   * @param costRatio search time in float passes
   * @param resumedAtStep the block visit a resumed search started at, 0 otherwise
   * @param reportDir where report.json and report.png went, or null
   */
  public record Search(String strategy, String objective, String genes, String inputs, int blockVisits,
      int blocksChanged, double lossBefore, double lossAfter, Double heldOutAgreementBefore,
      Double heldOutAgreementAfter, int searchImages, int heldOutImages, long evaluations, double searchSeconds,
      double fp32PassSeconds, double costRatio, int resumedAtStep, String reportDir) {}

  /**
   * What {@code Vitq.evaluate} measured.
   *
   * @param model the evaluated model
   * @param images images evaluated
   * @param skippedImages unreadable images skipped
   * @param top1 share of images whose top-1 class is their label (null for an unlabelled folder)
   * @param reference the reference model, or null
   * @param agreement share of images whose top-1 class equals the reference's (null without a reference, or for an
   *     embedding model)
   * @param embedding measures of an embedding model's outputs, or null for a classifier
   */
  public record Eval(String model, int images, int skippedImages, Double top1, String reference, Double agreement,
      EmbeddingMeasures embedding) {

    /** A classifier's measures. */
    public Eval(String model, int images, int skippedImages, Double top1, String reference, Double agreement) {
      this(model, images, skippedImages, top1, reference, agreement, null);
    }
  }

  /**
   * What an embedding user cares about, measured on one image folder.
   *
   * @param cosineMean mean over images of the cosine similarity of each image's output with the reference's (null
   *     without a reference)
   * @param cosineP1 its 1st percentile (null without a reference)
   * @param retrievalAgreement share of images whose nearest other image is the one the reference's outputs pick
   *     (null without a reference)
   * @param nearestNeighbourAccuracy share of labelled images whose nearest other image has their label (null for
   *     an unlabelled folder)
   */
  public record EmbeddingMeasures(Double cosineMean, Double cosineP1, Double retrievalAgreement,
      Double nearestNeighbourAccuracy) {}

  /**
   * What {@code Vitq.bench} measured.
   *
   * @param model the benchmarked model
   * @param batch images per run
   * @param threads ONNX Runtime intra-op threads (0: its choice)
   * @param runs timed runs
   * @param medianMillis median time of a run
   * @param p90Millis 90th percentile time of a run
   * @param imagesPerSecond batch / median
   */
  public record Bench(String model, int batch, int threads, int runs, double medianMillis, double p90Millis,
      double imagesPerSecond) {}

  /**
   * What {@code Vitq.export} wrote.
   *
   * @param bundle the bundle folder
   * @param source the float model
   * @param scheme the scheme's name
   * @param split blocks on the device
   * @param depth blocks in the model
   * @param reduction none, attention or pool
   * @param tokensIn tokens per image entering block K+1 in the model
   * @param tokensOut tokens per image crossing the boundary
   * @param bytesPerImage boundary bytes per image
   * @param float32BytesPerImage every token in float32: what the float model would send at this boundary
   * @param deviceBytes size of device.onnx
   * @param cloudBytes size of cloud.onnx
   * @param totalMillis time from start to the written bundle
   * @param configuration the reduction and the coding used
   * @param calibratedAgreement with {@code --max-bytes}: the chosen configuration's score on calibration images, as
   *     {@code measure} says
   * @param tried with {@code --max-bytes}: every configuration tried
   * @param measure what the scores are: {@code agreement} of the top-1 class with the float model's (a classifier) or
   *     {@code mean cosine} of the outputs with the float model's (an embedding model)
   */
  public record Export(String bundle, String source, String scheme, int split, int depth, String reduction,
      int tokensIn, int tokensOut, long bytesPerImage, long float32BytesPerImage, long deviceBytes, long cloudBytes,
      long totalMillis, String configuration, Double calibratedAgreement, List<Tried> tried, String measure) {
    /**
     * A configuration {@code --max-bytes} tried.
     *
     * @param configuration the reduction and the coding
     * @param tokens tokens per image
     * @param bytesPerImage bytes per image
     * @param agreement score against the float model on the scoring half of the calibration images, as the
     *     export's {@code measure} says
     */
    public record Tried(String configuration, int tokens, long bytesPerImage, double agreement) {}
  }

  /**
   * What {@code Vitq.benchBundle} measured.
   *
   * @param bundle the bundle folder
   * @param batch images per run
   * @param threads ONNX Runtime intra-op threads (0: its choice)
   * @param runs timed runs
   * @param deviceMedianMillis median time of a device run
   * @param cloudMedianMillis median time of a cloud run
   * @param bytesPerImage boundary bytes per image, as measured on the device's output
   */
  public record BundleBench(String bundle, int batch, int threads, int runs, double deviceMedianMillis,
      double cloudMedianMillis, long bytesPerImage) {}

  /**
   * What {@code Vitq.compare} measured, the reference first.
   *
   * @param rows one per model
   */
  public record Compare(java.util.List<Row> rows) {
    public Compare {
      rows = java.util.List.copyOf(rows);
    }

    /**
     * One model's measures.
     *
     * @param model the file name
     * @param top1 top-1 accuracy, or null for unlabelled images
     * @param agreement share of images whose top-1 class equals the reference's
     * @param bytes file size
     * @param batch1MedianMs median batch-1 latency
     * @param batch32MedianMs median batch-32 time
     * @param embedding an embedding model's measures against the reference, or null for a classifier
     */
    public record Row(String model, Double top1, Double agreement, long bytes, double batch1MedianMs,
        double batch32MedianMs, EmbeddingMeasures embedding) {

      /** A classifier's row. */
      public Row(String model, Double top1, Double agreement, long bytes, double batch1MedianMs,
          double batch32MedianMs) {
        this(model, top1, agreement, bytes, batch1MedianMs, batch32MedianMs, null);
      }
    }
  }
}
