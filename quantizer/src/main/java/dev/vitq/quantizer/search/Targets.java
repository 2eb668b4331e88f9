package dev.vitq.quantizer.search;

/** Images and the float model's outputs on them. */
record Targets(Images images, float[] reference) {}
