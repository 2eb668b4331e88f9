package dev.vitq.converter.check;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Groups the units a provider takes into partitions the way ONNX Runtime does for providers that compile subgraphs
 * (its {@code CreateSupportedPartitionNodeGroups}): a topological walk in waves. One wave takes every supported unit
 * it can reach and every unsupported unit that does not read from the group; an unsupported unit that reads from
 * the group marks its border and waits for the next wave. Each wave that took a supported unit is one partition, so
 * two supported units with an unsupported one between them never share a partition, while unconnected supported
 * units may.
 */
final class Partitioner {
  private Partitioner() {}

  /**
   * The partitions, each a list of unit indices in the order taken.
   *
   * @param successors for each unit, the units that read one of its outputs (distinct)
   * @param inDegree for each unit, how many distinct units it reads from
   * @param roots units that read from no unit, in graph order
   * @param supported for each unit, whether the provider takes it
   */
  static List<List<Integer>> partitions(List<List<Integer>> successors, int[] inDegree, List<Integer> roots,
      boolean[] supported) {
    int[] pending = inDegree.clone();
    ArrayDeque<Integer> ready = new ArrayDeque<>(roots);
    ArrayDeque<Integer> nextWave = new ArrayDeque<>();
    List<List<Integer>> groups = new ArrayList<>();
    List<Integer> group = new ArrayList<>();
    Set<Integer> border = new HashSet<>();
    while (!ready.isEmpty() || !nextWave.isEmpty()) {
      if (ready.isEmpty()) {
        if (!group.isEmpty()) {
          groups.add(group);
          group = new ArrayList<>();
        }
        border.clear();
        ready.addAll(nextWave);
        nextWave.clear();
        continue;
      }
      int u = ready.poll();
      if (!supported[u] && border.contains(u)) {
        nextWave.add(u);
        continue;
      }
      if (supported[u]) {
        group.add(u);
        border.remove(u);
      }
      for (int s : successors.get(u)) {
        if (supported[u]) {
          border.add(s);
        }
        if (--pending[s] == 0) {
          ready.add(s);
        }
      }
    }
    if (!group.isEmpty()) {
      groups.add(group);
    }
    return groups;
  }
}
