package dev.vitq.converter.check;

import java.util.List;

/**
 * What {@code vitq check} finds: how much of a model an execution provider would take, in how many partitions, and
 * what goes back to the CPU and why.
 *
 * @param model the model's file name
 * @param ep the provider's command-line name
 * @param provider the provider's human name
 * @param copiesAtCuts whether each cut between the provider and the CPU copies tensors between memories
 * @param batch the batch size symbolic batch dimensions were fixed to, or null when the model was checked as written
 * @param nodes nodes left once ONNX Runtime has loaded the model (Constant nodes and constant subgraphs folded)
 * @param folded nodes that fold away at load time and never reach a provider
 * @param supportedNodes nodes the provider takes
 * @param partitions how many partitions those nodes form
 * @param partitionSizes nodes in each partition, in the order they run
 * @param cpu the nodes left to the CPU grouped by operator and reason, most nodes first
 * @param cpuNodes every node (or quantized unit, named by its operator node) left to the CPU, in graph order
 */
public record CheckReport(String model, String ep, String provider, boolean copiesAtCuts, Integer batch, int nodes,
    int folded, int supportedNodes, int partitions, List<Integer> partitionSizes, List<CpuGroup> cpu,
    List<CpuNode> cpuNodes) {

  public CheckReport {
    partitionSizes = List.copyOf(partitionSizes);
    cpu = List.copyOf(cpu);
    cpuNodes = List.copyOf(cpuNodes);
  }

  /** Why a node is not the provider's: an operator it lacks, a data type, a shape or rank, or an op's condition. */
  public enum Kind {
    OPERATOR, TYPE, SHAPE, RANK, CONDITION
  }

  /**
   * Nodes left to the CPU for one reason.
   *
   * @param op the operator, {@code domain:op}
   * @param kind the kind of reason
   * @param reason the reason, one phrase
   * @param nodes how many nodes (QuantizeLinear and DequantizeLinear of a unit included)
   * @param example the first such node's name
   */
  public record CpuGroup(String op, Kind kind, String reason, int nodes, String example) {}

  /**
   * A node, or a quantized unit named by its operator node, left to the CPU.
   *
   * @param name the node's name (its first output when unnamed)
   * @param op the operator, {@code domain:op}
   * @param nodes nodes it stands for (1, or the unit's DequantizeLinear, operator and QuantizeLinear nodes)
   * @param kind the kind of reason
   * @param reason the reason, one phrase
   */
  public record CpuNode(String name, String op, int nodes, Kind kind, String reason) {}
}
