package dev.vitq.split;

/** Which tokens cross a split's boundary. */
public sealed interface Reduction {
  /** Every token. */
  record None() implements Reduction {}

  /**
   * The prefix tokens and the share {@code keep} of patch tokens the class token attends to most in block K; with
   * {@code fuse}, one more token: the mean of the dropped ones weighted by that attention (EViT's fused token).
   */
  record Attention(double keep, boolean fuse) implements Reduction {}

  /** The prefix tokens and the mean of every {@code size} x {@code size} square of neighbouring patch tokens. */
  record Pool(int size) implements Reduction {}

  /**
   * ToMe's bipartite soft matching: patch tokens alternate between sets A and B; the {@code merged} tokens of A
   * most similar (cosine) to some token of B are averaged into it; the prefix tokens are never merged.
   */
  record Merge(int merged) implements Reduction {}

  /** The reduction's name in a manifest and a report: none, attention, pool or merge. */
  default String kind() {
    return switch (this) {
      case None n -> "none";
      case Attention a -> "attention";
      case Pool p -> "pool";
      case Merge g -> "merge";
    };
  }

  /** The reduction in the words of the command line. */
  default String describe() {
    return switch (this) {
      case None n -> "every token";
      case Attention a -> "--keep-tokens " + a.keep() + (a.fuse() ? " --fuse" : "");
      case Pool p -> "--pool " + p.size();
      case Merge g -> "--merge " + g.merged();
    };
  }
}
