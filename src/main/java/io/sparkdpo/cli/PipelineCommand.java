package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code spark-dpo pipeline}: every stage of the controlled-sentiment experiment in one Spark session. */
@Command(name = "pipeline", mixinStandardHelpOptions = true,
    description = {"Run the controlled-sentiment experiment end to end with one configuration: sft on",
        "pipeline.text, generate (pairs labelled by evaluate.reward, held-out prompts from pipeline.eval_text),",
        "prepare, reference, one DPO run per pipeline.betas, evaluate, and export of the best run, each into a",
        "folder under pipeline.output_dir. A stage whose output is up to date is skipped and says so;",
        "pipeline.stages picks stages."})
public final class PipelineCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    JobConfig cfg = job.load(List.of());
    new Pipeline(SparkSessions.create(cfg, "pipeline"), job.config, job.allOverrides(), spec.commandLine().getOut())
        .run();
    return 0;
  }
}
