package dev.vitq.cli;

import picocli.CommandLine.Command;

/** The root command. */
@Command(
    name = "vitq",
    mixinStandardHelpOptions = true,
    versionProvider = VersionProvider.class,
    description = "Post-training quantization and conversion of Vision Transformers in ONNX.",
    subcommands = {QuantizeCommand.class, ExportCommand.class, EvalCommand.class, BenchCommand.class,
        CompareCommand.class, InspectCommand.class, CheckCommand.class, ConvertCommand.class, ModelsCommand.class,
        ServeCommand.class})
final class VitqCommand {}
