# shellcheck shell=bash
# Shared by deploy/*/submit.sh: finds the application jar and builds the spark-submit settings every stage
# needs. Sourced, not run. Every setting is explained in deploy/README.md.
#
# Environment (all optional):
#   SPARK_DPO_JAR               application jar (default: target/spark-dpo-*-app.jar from `mvn package`)
#   SPARK_DPO_WORKERS           executors = training replicas (default 2)
#   SPARK_DPO_EXECUTOR_CORES    cores per executor (default 4); a training task takes all of them
#   SPARK_DPO_EXECUTOR_MEMORY   executor heap (default 8g); libtorch's memory is off-heap: see the overhead below
#   SPARK_DPO_EXECUTOR_OVERHEAD off-heap per executor for libtorch (default 4g)
#   SPARK_DPO_DRIVER_MEMORY     driver heap (default 4g)
#   SPARK_DPO_GPUS              1: one GPU per executor and per training task; 0: CPU (default 0)
#   SPARK_DPO_GPU_DISCOVERY     discovery script path on the executors' hosts
#                               (default: <this repo>/deploy/gpu/getGpusResources.sh)
#   SPARK_DPO_EVENT_LOG_DIR     event log folder for the history server (e.g. s3a://bucket/spark-events);
#                               unset: event logs off
#   SPARK_DPO_CONF_FILE         a spark-defaults style file passed as --properties-file (see conf/); on a
#                               standalone cluster it holds spark.authenticate.secret (readable only by you)
#   SPARK_DPO_AUTHENTICATE      false: no spark.authenticate / spark.network.crypto.enabled (a cluster without a
#                               shared secret; not for shared clusters). Default true
#   SPARK_SUBMIT                the spark-submit to run (default: $SPARK_HOME/bin/spark-submit, else on PATH)
#   SPARK_DPO_DRY_RUN           1: print the command instead of running it

SPARK_DPO_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Spark hides the values of keys (and values) matching this in its UI, logs and event log: every credential-like key
# (*.key, keyfile, encryption.key, account.key, oauth, signature, credential, token, secret, password). The same
# expression as io.sparkdpo.config.Redaction.SPARK_REGEX, which the application sets too (DeployScriptsTest checks).
SPARK_DPO_REDACTION_REGEX='(?i)secret|passw(?:or)?d|passphrase|credential|oauth|signature|keyfile|(?<![a-z])token(?![a-z])|(?<![a-z0-9])key(?![a-z])|(?:access|account|encryption|private|secret|client|api|sse|signing|master|shared|storage)[._-]?key(?![a-z])|(?-i:[a-z0-9](?:Token|Key)(?![a-z]))'

spark_dpo_jar() {
  if [ -n "${SPARK_DPO_JAR:-}" ]; then
    echo "$SPARK_DPO_JAR"
    return
  fi
  local jars=("$SPARK_DPO_HOME"/target/spark-dpo-*-app.jar)
  if [ ! -f "${jars[0]}" ]; then
    echo "spark-dpo: no application jar in $SPARK_DPO_HOME/target: run 'mvn -B package' or set SPARK_DPO_JAR" >&2
    return 1
  fi
  echo "${jars[0]}"
}

spark_submit_bin() {
  if [ -n "${SPARK_SUBMIT:-}" ]; then
    echo "$SPARK_SUBMIT"
  elif [ -n "${SPARK_HOME:-}" ] && [ -x "$SPARK_HOME/bin/spark-submit" ]; then
    echo "$SPARK_HOME/bin/spark-submit"
  else
    echo spark-submit
  fi
}

# Commands that run one training replica per executor in a barrier stage.
spark_dpo_is_barrier_command() {
  case "$1" in
    train|sft|cluster-check) return 0 ;;
    *) return 1 ;;
  esac
}

# Fills the array SPARK_DPO_CONF with --conf pairs for command $1.
spark_dpo_common_conf() {
  local command="$1"
  local cores="${SPARK_DPO_EXECUTOR_CORES:-4}"
  SPARK_DPO_CONF=(
    --conf "spark.executor.cores=$cores"
    --conf "spark.executor.memory=${SPARK_DPO_EXECUTOR_MEMORY:-8g}"
    --conf "spark.executor.memoryOverhead=${SPARK_DPO_EXECUTOR_OVERHEAD:-4g}"
    --conf "spark.driver.memory=${SPARK_DPO_DRIVER_MEMORY:-4g}"
    # DJL must never try to download natives on a cluster: they are in the jar.
    --conf "spark.executorEnv.DJL_OFFLINE=true"
    # libtorch's OpenMP threads would spin while waiting, next to Spark's threads (docs/djl-pitfalls.md).
    --conf "spark.executorEnv.OMP_WAIT_POLICY=PASSIVE"
    --conf "spark.executor.extraJavaOptions=-Dai.djl.offline=true"
    --conf "spark.driver.extraJavaOptions=-Dai.djl.offline=true"
    # s3a: credentials from the environment or the instance/pod role, never from files or these settings.
    --conf "spark.hadoop.fs.s3a.aws.credentials.provider=software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider,org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
    --conf "spark.sql.session.timeZone=UTC"
    # A killed task (a failed barrier stage) whose thread is stuck, say in a native call, gets its executor JVM
    # killed after the timeout instead of holding the executor's cores, GPU and ring ports.
    --conf "spark.task.reaper.enabled=true"
    --conf "spark.task.reaper.killTimeout=120s"
    # Credential-like values hidden in Spark's UI, logs and event log.
    --conf "spark.redaction.regex=$SPARK_DPO_REDACTION_REGEX"
  )
  if [ "${SPARK_DPO_AUTHENTICATE:-true}" != "false" ]; then
    SPARK_DPO_CONF+=(
      # Spark's RPC and block transfers authenticated with the application's shared secret and encrypted (AES);
      # the training ring derives its own key from that secret (docs/distributed.md).
      --conf "spark.authenticate=true"
      --conf "spark.network.crypto.enabled=true"
    )
  else
    echo "spark-dpo: SPARK_DPO_AUTHENTICATE=false: Spark's connections are neither authenticated nor encrypted" >&2
  fi
  if spark_dpo_is_barrier_command "$command"; then
    SPARK_DPO_CONF+=(
      # One training task per executor: it takes all the executor's cores (and its one GPU).
      --conf "spark.task.cpus=$cores"
      # Barrier stages refuse to run with dynamic allocation, and need all W slots at once.
      --conf "spark.dynamicAllocation.enabled=false"
      --conf "spark.scheduler.barrier.maxConcurrentTasksCheck.interval=5s"
      --conf "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures=60"
      # A failed training task fails the stage; the driver resumes from the last checkpoint instead.
      --conf "spark.task.maxFailures=1"
    )
  fi
  if [ "${SPARK_DPO_GPUS:-0}" = "1" ]; then
    SPARK_DPO_CONF+=(
      --conf "spark.executor.resource.gpu.amount=1"
      --conf "spark.task.resource.gpu.amount=1"
      --conf "spark.executor.resource.gpu.discoveryScript=${SPARK_DPO_GPU_DISCOVERY:-$SPARK_DPO_HOME/deploy/gpu/getGpusResources.sh}"
    )
  fi
  if [ -n "${SPARK_DPO_EVENT_LOG_DIR:-}" ]; then
    SPARK_DPO_CONF+=(
      --conf "spark.eventLog.enabled=true"
      --conf "spark.eventLog.dir=$SPARK_DPO_EVENT_LOG_DIR"
      --conf "spark.eventLog.rolling.enabled=true"
    )
  fi
  if [ -n "${SPARK_DPO_CONF_FILE:-}" ]; then
    SPARK_DPO_CONF+=(--properties-file "$SPARK_DPO_CONF_FILE")
  fi
}

# Standalone clusters have no per-application secret: spark.authenticate needs the cluster's shared secret in a
# properties file (never on the command line, where ps and the UI would show it). Exits 2 when it is missing.
spark_dpo_require_standalone_secret() {
  [ "${SPARK_DPO_AUTHENTICATE:-true}" != "false" ] || return 0
  local file="${SPARK_DPO_CONF_FILE:-${SPARK_CONF_DIR:-${SPARK_HOME:-/nonexistent}/conf}/spark-defaults.conf}"
  if [ -r "$file" ] && grep -Eq '^[[:space:]]*spark\.authenticate\.secret([[:space:]=:]|$)' "$file"; then
    return 0
  fi
  echo "spark-dpo: spark.authenticate is on, and a standalone cluster needs its shared secret: put" \
    "'spark.authenticate.secret <secret>' in a properties file readable only by you and set SPARK_DPO_CONF_FILE" \
    "to it (the master and workers need the same in their spark-defaults.conf), or set SPARK_DPO_AUTHENTICATE=false" \
    "for a cluster without authentication (looked in $file)" >&2
  exit 2
}

# Runs (or with SPARK_DPO_DRY_RUN=1 prints) spark-submit with the given arguments.
spark_dpo_run() {
  if [ "${SPARK_DPO_DRY_RUN:-0}" = "1" ]; then
    printf '%q ' "$@"
    echo
  else
    exec "$@"
  fi
}

spark_dpo_usage() {
  echo "usage: $0 <command> [command args...]   (commands: spark-dpo --help; settings: deploy/README.md)" >&2
  exit 2
}
