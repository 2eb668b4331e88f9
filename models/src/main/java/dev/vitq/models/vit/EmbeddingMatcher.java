package dev.vitq.models.vit;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Tensor;
import dev.vitq.models.vit.VitStructure.Embedding;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Reads what comes before an encoder's blocks: the patch convolution on the image (after an in-graph normalisation
 * or not), the prefix tokens (class, distillation, registers, concatenated before the patches or inserted after the
 * position add), the position embedding (learned, or computed from constants) and a norm before the blocks.
 */
final class EmbeddingMatcher {
  private final Patterns p;
  private final GraphIndex idx;

  EmbeddingMatcher(Patterns p) {
    this.p = p;
    this.idx = p.index();
  }

  private static NotRecognised missing(String what) {
    return new NotRecognised(what);
  }

  Embedding embedding(String image) throws NotRecognised {
    Node conv = patchConv(image);
    Tensor weight = idx.constant(conv.input(1)).orElseThrow();
    if (!VitRecognizer.isFloat(weight.dtype())) {
      throw missing("the patch embedding's weight holds " + weight.dtype() + ", not floating point");
    }
    long width = weight.dims().get(0);
    String x = conv.output();
    for (List<Node> cs = p.dataConsumers(x); cs.size() == 1 && VitRecognizer.LAYOUT.contains(cs.get(0).opType());
        cs = p.dataConsumers(x)) {
      x = cs.get(0).output();
    }
    String classToken = null;
    String pos = null;
    Norm preNorm = null;
    int prefix = 0;
    for (int step = 0; step < 6; step++) {
      List<Node> cs = p.dataConsumers(x);
      Optional<Norm> norm = p.normFrom(x);
      if (norm.isPresent() && cs.stream().allMatch(c -> norm.get().nodes().contains(c.output()))) {
        // The stream's only reader is a norm: a norm before the blocks (CLIP's pre-norm), not a block's norm1.
        preNorm = norm.get();
        x = preNorm.output();
        continue;
      }
      Optional<Node> inserted = tokensInserted(x, cs, width);
      if (inserted.isPresent()) {
        // Hugging Face's Dinov2WithRegisters: x[:, :1], the registers, x[:, 1:] concatenated after the position add.
        for (String in : inserted.get().inputs()) {
          Optional<PrefixTokens> t = prefixTokens(in, width);
          if (t.isPresent()) {
            prefix += t.get().count();
          }
        }
        x = inserted.get().output();
        continue;
      }
      if (cs.size() != 1) {
        break;
      }
      Node c = cs.get(0);
      if (c.is("Concat") && c.inputs().size() >= 2) {
        int at = c.inputs().indexOf(x);
        for (int k = 0; k < c.inputs().size(); k++) {
          if (k == at) {
            continue;
          }
          if (k > at) {
            throw missing("tokens are appended after the patch tokens, which vitq does not know");
          }
          Optional<PrefixTokens> t = prefixTokens(c.input(k), width);
          if (t.isEmpty()) {
            throw missing("the patch tokens are concatenated with something other than learned tokens");
          }
          classToken = classToken == null ? t.get().tensor() : classToken;
          prefix += t.get().count();
        }
      } else if (c.is("Add") && Patterns.other(c, x) != null && !dependsOnInput(Patterns.other(c, x))) {
        // A learned position embedding, or one computed from constants only (an interpolation to the same grid).
        pos = Patterns.other(c, x);
      } else {
        break;
      }
      x = c.output();
    }
    return new Embedding(conv.output(), conv.input(0), conv.input(1), conv.input(2).isEmpty() ? null : conv.input(2),
        classToken, pos, preNorm, x, prefix);
  }

  /**
   * The Concat that puts learned tokens between the leading and trailing tokens of {@code x} (Slices of it on the
   * token axis), or empty.
   */
  private Optional<Node> tokensInserted(String x, List<Node> consumers, long width) {
    if (consumers.size() < 2 || !consumers.stream().allMatch(n -> n.is("Slice") && n.input(0).equals(x))) {
      return Optional.empty();
    }
    Node concat = null;
    for (Node slice : consumers) {
      List<Node> next = p.dataConsumers(slice.output());
      if (next.size() != 1 || !next.get(0).is("Concat") || (concat != null && next.get(0) != concat)) {
        return Optional.empty();
      }
      concat = next.get(0);
    }
    int learned = 0;
    for (String in : concat.inputs()) {
      boolean slice = consumers.stream().anyMatch(n -> n.output().equals(in));
      if (!slice && prefixTokens(in, width).isEmpty()) {
        return Optional.empty();
      }
      learned += slice ? 0 : 1;
    }
    long axis = concat.intAttr("axis", 0);
    return learned > 0 && (axis == 1 || axis == -2) ? Optional.of(concat) : Optional.empty();
  }

  /** Whether {@code v} depends on a graph input that is not an initializer (the image). */
  private boolean dependsOnInput(String v) {
    Set<String> seen = new HashSet<>();
    ArrayDeque<String> work = new ArrayDeque<>(List.of(v));
    while (!work.isEmpty()) {
      String cur = work.pop();
      if (cur.isEmpty() || !seen.add(cur)) {
        continue;
      }
      Optional<Node> n = idx.producer(cur);
      if (n.isEmpty()) {
        if (idx.graph().input(cur).isPresent() && idx.initializer(cur).isEmpty()) {
          return true;
        }
        continue;
      }
      n.get().inputs().forEach(work::push);
    }
    return false;
  }

  /** The patch convolution: a Conv on the image, or on the image after an in-graph normalisation. */
  private Node patchConv(String image) throws NotRecognised {
    String v = image;
    for (int step = 0; step < 4; step++) {
      List<Node> cs = p.dataConsumers(v);
      for (Node c : cs) {
        if (c.is("Conv") && c.input(0).equals(v) && idx.constant(c.input(1)).filter(t -> t.rank() == 4).isPresent()) {
          return c;
        }
      }
      if (cs.size() != 1 || !(cs.get(0).is("Sub") || cs.get(0).is("Div") || cs.get(0).is("Mul")
          || cs.get(0).is("Add") || cs.get(0).is("Cast")) || !constantsBesides(cs.get(0), v)) {
        break;
      }
      v = cs.get(0).output();
    }
    throw missing("no patch embedding (a Conv on the image input) was found");
  }

  private boolean constantsBesides(Node n, String v) {
    return n.inputs().stream().allMatch(in -> in.equals(v) || in.isEmpty() || idx.isConstant(in));
  }

  /** A learned token tensor concatenated before the patches, and how many tokens it holds. */
  private record PrefixTokens(String tensor, int count) {}

  /** The constant behind an Expand/Tile/Reshape/Unsqueeze of learned tokens [1, k, width] (or [width]). */
  private Optional<PrefixTokens> prefixTokens(String value, long width) {
    String v = value;
    for (int i = 0; i < 6; i++) {
      Optional<Tensor> t = idx.constant(v);
      if (t.isPresent()) {
        long n = t.get().elementCount();
        boolean tokens = !t.get().dims().isEmpty() && t.get().dims().get(t.get().rank() - 1) == width
            && n % width == 0 && n > 0;
        return tokens ? Optional.of(new PrefixTokens(v, (int) (n / width))) : Optional.empty();
      }
      Node n = idx.producer(v).orElse(null);
      if (n == null || !(n.is("Expand") || n.is("Tile") || VitRecognizer.LAYOUT.contains(n.opType()) || n.is("Cast"))) {
        return Optional.empty();
      }
      v = n.input(0);
    }
    return Optional.empty();
  }
}
