package dev.vitq.api;

import java.nio.file.Path;

/**
 * What a conversion did.
 *
 * @param output the written model
 * @param importMillis reading and checking the input
 * @param exportMillis writing the output
 */
public record ConvertReport(Path output, double importMillis, double exportMillis) {}
