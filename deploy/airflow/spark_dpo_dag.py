"""Airflow DAG running the spark-dpo stages as spark-submit jobs: prepare -> reference -> train -> evaluate -> export.

Each task is one `spark-submit --class io.sparkdpo.cli.Main <app jar> <stage> ...` through the Spark connection
``spark_dpo`` (Admin > Connections: host = the master, e.g. ``yarn``, ``spark://host:7077`` or
``k8s://https://api:6443``; extra = ``{"deploy-mode": "cluster"}`` as needed).

Retries are safe because every stage is idempotent: a re-run with the same inputs and settings is a no-op that says
so, and ``train`` resumes from its last checkpoint in the run folder. Folders are per run date (``{{ ds }}``), so
a retried or backfilled date never touches another date's outputs.

Trigger parameters (Trigger DAG w/ config): ``data_uri`` (raw preference pairs), ``eval_prompts_uri``
(held-out prompts for the generation-based evaluation), ``work_uri`` (where stage
outputs go; one folder per run date), ``config`` (the job YAML on the driver's host or in the image), ``workers``
(training replicas = executors), ``executor_cores``.

The flags are those of ``spark-dpo <stage> --help``: ``prepare --input --output`` (``train.workers`` set so that
it writes one training shard per replica), ``reference --data --output``, ``train --data --output --workers``,
``evaluate --run --prompts --data --output``, ``export --run --output``; the model comes from the job YAML
(``model.path``, ``reference.model``). ``AirflowDagTest`` parses every task's arguments with the real commands.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.models.param import Param
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

APP_JAR = "/opt/spark-dpo/spark-dpo-app.jar"
MAIN_CLASS = "io.sparkdpo.cli.Main"
CONN_ID = "spark_dpo"
# Every credential-like key (*.key, keyfile, encryption.key, account.key, oauth, signature, credential, token, secret,
# password): the same expression as io.sparkdpo.config.Redaction.SPARK_REGEX (AirflowDagTest checks).
REDACTION_REGEX = (
    "(?i)secret|passw(?:or)?d|passphrase|credential|oauth|signature|keyfile"
    "|(?<![a-z])token(?![a-z])|(?<![a-z0-9])key(?![a-z])"
    "|(?:access|account|encryption|private|secret|client|api|sse|signing|master|shared|storage)[._-]?key(?![a-z])"
    "|(?-i:[a-z0-9](?:Token|Key)(?![a-z]))"
)

# Per-date folders: every stage reads the previous stage's folder and writes its own.
RUN = "{{ params.work_uri }}/{{ ds }}"
PREPARED = RUN + "/prepared"
REFERENCED = RUN + "/referenced"
TRAIN_RUN = RUN + "/run"
REPORT = RUN + "/report"
EXPORTED = RUN + "/model"

# Settings every stage gets (deploy/README.md explains each).
COMMON_CONF = {
    "spark.executorEnv.DJL_OFFLINE": "true",
    "spark.executorEnv.OMP_WAIT_POLICY": "PASSIVE",  # libtorch's OpenMP threads would spin (docs/djl-pitfalls.md)
    "spark.executor.extraJavaOptions": "-Dai.djl.offline=true",
    "spark.driver.extraJavaOptions": "-Dai.djl.offline=true",
    # Credentials from the environment or the instance/pod role; never in Airflow variables or files.
    "spark.hadoop.fs.s3a.aws.credentials.provider": (
        "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider,"
        "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
    ),
    "spark.eventLog.enabled": "true",
    "spark.eventLog.dir": "{{ params.work_uri }}/spark-events",
    "spark.sql.session.timeZone": "UTC",
    # Spark's RPC and block transfers authenticated and encrypted. YARN and Kubernetes make a secret per
    # application; a standalone master needs spark.authenticate.secret in the Airflow worker's spark-defaults.conf
    # (never in this file or in Airflow variables), and the same in the master's and workers'.
    "spark.authenticate": "true",
    "spark.network.crypto.enabled": "true",
    # A killed task whose thread is stuck (a native call) gets its executor JVM killed after the timeout.
    "spark.task.reaper.enabled": "true",
    "spark.task.reaper.killTimeout": "120s",
    # Credential-like values hidden in the UI, logs and event log (io.sparkdpo.config.Redaction.SPARK_REGEX).
    "spark.redaction.regex": REDACTION_REGEX,
}

# A barrier stage: one training replica per executor, every executor at once, no dynamic allocation.
BARRIER_CONF = {
    **COMMON_CONF,
    "spark.executor.cores": "{{ params.executor_cores }}",
    "spark.task.cpus": "{{ params.executor_cores }}",
    "spark.executor.instances": "{{ params.workers }}",
    "spark.cores.max": "{{ params.workers * params.executor_cores }}",
    "spark.dynamicAllocation.enabled": "false",
    "spark.scheduler.barrier.maxConcurrentTasksCheck.interval": "5s",
    "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures": "60",
    "spark.task.maxFailures": "1",
}


def stage(task_id, args, conf, retries=2):
    """One spark-dpo stage as a spark-submit task."""
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=CONN_ID,
        application=APP_JAR,
        java_class=MAIN_CLASS,
        name="spark-dpo-" + task_id + "-{{ ds_nodash }}",
        application_args=[task_id, "--config", "{{ params.config }}", *args],
        conf=conf,
        executor_memory="8g",
        driver_memory="4g",
        retries=retries,
        verbose=False,
    )


with DAG(
    dag_id="spark_dpo",
    description="DPO on Spark: prepare, reference log-probs, train, evaluate, export",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "spark-dpo",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
    params={
        "data_uri": Param("s3a://my-bucket/preferences/raw", type="string"),
        "eval_prompts_uri": Param("s3a://my-bucket/preferences/eval_prompts.jsonl", type="string"),
        "work_uri": Param("s3a://my-bucket/spark-dpo", type="string"),
        "config": Param("/opt/spark-dpo/conf/cluster-s3.yaml", type="string"),
        "workers": Param(2, type="integer", minimum=1),
        "executor_cores": Param(4, type="integer", minimum=1),
    },
    tags=["spark-dpo", "spark"],
) as dag:
    # One training shard per replica: prepare.num_shards 0 (the default) means one per train.workers.
    prepare = stage("prepare", ["--input", "{{ params.data_uri }}", "--output", PREPARED,
                                "--set", "train.workers={{ params.workers }}"], COMMON_CONF)
    reference = stage("reference", ["--data", PREPARED, "--output", REFERENCED], COMMON_CONF)
    # Training resumes from its last checkpoint in TRAIN_RUN, so a retry continues rather than restarts.
    train = stage("train", ["--data", REFERENCED, "--output", TRAIN_RUN, "--workers", "{{ params.workers }}",
                            "--reference-mode", "precomputed"], BARRIER_CONF, retries=3)
    # Generation-based evaluation on held-out prompts (text, or generate's eval_prompts.jsonl) against the run's
    # starting model (pi_SFT), plus DPO metrics on the referenced eval split.
    evaluate = stage("evaluate", ["--run", TRAIN_RUN, "--prompts", "{{ params.eval_prompts_uri }}",
                                  "--data", REFERENCED, "--output", REPORT], COMMON_CONF)
    export = stage("export", ["--run", TRAIN_RUN, "--output", EXPORTED], COMMON_CONF)

    prepare >> reference >> train >> [evaluate, export]
