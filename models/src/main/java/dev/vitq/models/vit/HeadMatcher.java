package dev.vitq.models.vit;

import dev.vitq.models.GraphIndex;
import dev.vitq.models.Node;
import dev.vitq.models.Value;
import dev.vitq.models.vit.VitStructure.Head;
import dev.vitq.models.vit.VitStructure.Linear;
import dev.vitq.models.vit.VitStructure.Norm;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Reads what follows an encoder's blocks: the final norm (before or after the pooling, or none), the pooling (the
 * tokens themselves, the class token, their mean, or attention pooling such as SigLIP's MAP head), then nothing
 * more, a projection, one classifier or two averaged.
 */
final class HeadMatcher {
  private final Patterns p;
  private final GraphIndex idx;

  HeadMatcher(Patterns p) {
    this.p = p;
    this.idx = p.index();
  }

  private static NotRecognised missing(String what) {
    return new NotRecognised(what);
  }

  /** The head and the final norm (or null), which may come before or after the pooling. */
  record HeadParts(Norm norm, Head head) {}

  HeadParts head(String x, int prefix) throws NotRecognised {
    Optional<Norm> sequenceNorm = p.normFrom(x);
    String f = sequenceNorm.map(Norm::output).orElse(x);
    List<Pooled> pooled = new ArrayList<>();
    for (Node c : p.dataConsumers(f)) {
      Pooled pl = pooling(c, f, prefix);
      if (pl != null) {
        pooled.add(pl);
      }
    }
    List<Linear> poolLinears = List.of();
    if (pooled.isEmpty()) {
      Optional<AttentionPool> pool = attentionPool(f);
      if (pool.isPresent()) {
        pooled.add(new Pooled(Head.Pooling.ATTENTION, pool.get().value()));
        poolLinears = pool.get().linears();
      }
    }
    String tokensOut = p.skipCasts(f);
    if (pooled.isEmpty()) {
      if (idx.isGraphOutput(tokensOut)) {
        return new HeadParts(sequenceNorm.orElse(null), new Head(Head.Pooling.NONE, List.of(), List.of(), tokensOut));
      }
      throw missing(sequenceNorm.isPresent()
          ? "the final norm is followed by no class-token, mean or attention pooling, and is not a model output"
          : "the last block is followed by no final norm, pooling or model output");
    }
    if (pooled.size() > 2 || pooled.stream().map(Pooled::kind).distinct().count() > 1) {
      throw missing("the tokens are pooled " + pooled.size() + " ways, which vitq does not know");
    }
    Norm norm = sequenceNorm.orElse(null);
    List<Linear> linears = new ArrayList<>();
    String end = null;
    for (Pooled pl : pooled) {
      String v = pl.value();
      if (sequenceNorm.isEmpty()) {
        Optional<Norm> after = p.normFrom(v);
        if (after.isPresent() && pooled.size() == 1) {
          norm = after.get();
          v = norm.output();
        } else if (pooled.size() != 1) {
          throw missing("the pooled tokens are not normalised before the classifiers");
        }
      }
      Optional<Linear> l = p.linearFrom(v);
      l.ifPresent(linears::add);
      end = l.map(Linear::output).orElse(v);
    }
    String output;
    if (pooled.size() == 2) {
      if (linears.size() != 2) {
        throw missing("the two pooled tokens are not read by two classifiers");
      }
      output = averaged(linears.get(0).output(), linears.get(1).output());
    } else {
      output = end;
    }
    if (!idx.isGraphOutput(output)) {
      if (linears.isEmpty() && idx.isGraphOutput(tokensOut)) {
        return new HeadParts(sequenceNorm.orElse(null), new Head(Head.Pooling.NONE, List.of(), List.of(), tokensOut));
      }
      throw missing(linears.isEmpty() ? "the pooled embedding is not a model output"
          : "the classification layer's output is not a model output");
    }
    return new HeadParts(norm, new Head(pooled.get(0).kind(), poolLinears, linears, output));
  }

  /** An attention pool's output (one vector per image) and its linear layers in graph order. */
  private record AttentionPool(String value, List<Linear> linears) {}

  /**
   * Attention pooling (SigLIP's MAP head): on the way from the tokens {@code f} to a model output, one softmax, and
   * after it a pick of the one pooled token (or a mean), which is the pooled vector.
   */
  private Optional<AttentionPool> attentionPool(String f) {
    for (Value o : idx.graph().outputs()) {
      Set<String> region = dataAncestors(f, o.name());
      if (!region.contains(o.name()) && !o.name().equals(f)) {
        continue;
      }
      List<Node> inOrder = idx.graph().nodes().stream().filter(n -> !n.outputs().isEmpty()
          && region.contains(n.output())).toList();
      for (Node pick : inOrder) {
        String pickInput = pick.is("Slice") ? null : pick.input(0);
        Pooled pl = pick.is("Gather") || pick.is("ReduceMean") ? pooling(pick, pick.input(0), 1) : null;
        if (pl == null || pickInput == null) {
          continue;
        }
        Set<String> before = dataAncestors(f, pl.value());
        long softmaxes = before.stream().filter(v -> idx.producer(v).orElseThrow().is("Softmax")).count();
        if (softmaxes != 1) {
          continue;
        }
        List<Linear> linears = new ArrayList<>();
        for (Node n : idx.graph().nodes()) {
          if ((n.is("MatMul") || n.is("Gemm")) && before.contains(n.output())) {
            p.linearAt(n).ifPresent(linears::add);
          }
        }
        return Optional.of(new AttentionPool(pl.value(), linears));
      }
    }
    return Optional.empty();
  }

  /**
   * Values computed on the way from {@code from} to {@code to} that depend on {@code from}: {@code to}'s ancestors
   * that are {@code from}'s descendants, not counting reads of a shape.
   */
  private Set<String> dataAncestors(String from, String to) {
    Set<String> descendants = new HashSet<>();
    ArrayDeque<String> work = new ArrayDeque<>(List.of(from));
    while (!work.isEmpty()) {
      String v = work.pop();
      for (Node c : p.dataConsumers(v)) {
        for (String out : c.outputs()) {
          if (descendants.add(out)) {
            work.push(out);
          }
        }
      }
    }
    Set<String> region = new HashSet<>();
    work.push(to);
    while (!work.isEmpty()) {
      String v = work.pop();
      if (!descendants.contains(v) || !region.add(v)) {
        continue;
      }
      idx.producer(v).ifPresent(n -> n.inputs().stream().filter(in -> !in.isEmpty()).forEach(work::push));
    }
    return region;
  }

  /** One way the token sequence becomes a vector: a token picked, or the mean over tokens. */
  private record Pooled(Head.Pooling kind, String value) {}

  private Pooled pooling(Node c, String f, int prefix) {
    if (c.is("Gather") && c.input(0).equals(f) && (c.intAttr("axis", 0) == 1 || c.intAttr("axis", 0) == -2)
        && idx.longs(c.input(1)).filter(v -> v.length == 1 && v[0] >= 0 && v[0] < Math.max(1, prefix)).isPresent()
        && idx.constant(c.input(1)).orElseThrow().rank() == 0) {
      return new Pooled(Head.Pooling.CLASS_TOKEN, c.output());
    }
    if (c.is("Slice") && c.input(0).equals(f) && axisOne(c.input(3))) {
      long start = idx.longs(c.input(1)).filter(v -> v.length == 1).map(v -> v[0]).orElse(-1L);
      long end = idx.longs(c.input(2)).filter(v -> v.length == 1).map(v -> v[0]).orElse(-1L);
      Node next = p.dataConsumers(c.output()).stream().findFirst().orElse(null);
      if (next == null || p.dataConsumers(c.output()).size() != 1) {
        return null;
      }
      if (start >= 0 && start < Math.max(1, prefix) && end == start + 1
          && (next.is("Squeeze") || next.is("Reshape") || next.is("Flatten"))) {
        return new Pooled(Head.Pooling.CLASS_TOKEN, next.output());
      }
      if (start >= 0 && start == prefix && end > start && next.is("ReduceMean") && reducesAxisOne(next)) {
        return new Pooled(Head.Pooling.MEAN, next.output());
      }
      return null;
    }
    if (c.is("ReduceMean") && c.input(0).equals(f) && reducesAxisOne(c)) {
      return new Pooled(Head.Pooling.MEAN, c.output());
    }
    return null;
  }

  private boolean axisOne(String axes) {
    return axes.isEmpty() ? false : idx.longs(axes).filter(v -> v.length == 1 && (v[0] == 1 || v[0] == -2))
        .isPresent();
  }

  private boolean reducesAxisOne(Node mean) {
    Optional<List<Long>> attr = mean.intsAttr("axes");
    boolean one = attr.isPresent() ? attr.get().size() == 1 && (attr.get().get(0) == 1 || attr.get().get(0) == -2)
        : axisOne(mean.input(1));
    return one && mean.intAttr("keepdims", 1) == 0;
  }

  /** The value {@code (a + b) / 2} of two classifier outputs (DeiT's distilled head), or "" when not so. */
  private String averaged(String a, String b) throws NotRecognised {
    Node add = p.dataConsumers(a).stream().filter(n -> n.is("Add") && b.equals(Patterns.other(n, a))).findFirst()
        .orElseThrow(() -> missing("the two classifiers' outputs are not averaged"));
    List<Node> cs = p.dataConsumers(add.output());
    if (cs.size() == 1) {
      Node half = cs.get(0);
      String c = Patterns.other(half, add.output());
      Optional<Float> k = c == null ? Optional.empty() : idx.scalar(c);
      if (k.isPresent() && ((half.is("Div") && k.get() == 2f) || (half.is("Mul") && k.get() == 0.5f))) {
        return half.output();
      }
    }
    throw missing("the two classifiers' outputs are not averaged");
  }
}
