#!/usr/bin/env bash
# Submits one spark-dpo command to a Spark standalone cluster.
#   SPARK_MASTER=spark://master:7077 deploy/standalone/submit.sh train --config conf/cluster-s3.yaml \
#       --data s3a://b/referenced --workers 2   (--workers = SPARK_DPO_WORKERS, default 2)
# The driver runs here (client mode) so its progress bar and logs are on this terminal; set
# SPARK_DPO_DEPLOY_MODE=cluster to run it on a worker. Settings: deploy/common.sh and deploy/README.md.
# Authentication (on by default): standalone has no secret of its own per application; the cluster's shared secret,
# spark.authenticate.secret, goes in the properties file SPARK_DPO_CONF_FILE (or $SPARK_CONF_DIR/spark-defaults.conf),
# never on the command line, and in the master's and workers' spark-defaults.conf.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

[ $# -ge 1 ] || spark_dpo_usage
command="$1"
master="${SPARK_MASTER:?set SPARK_MASTER, e.g. spark://master-host:7077}"
jar="$(spark_dpo_jar)"
spark_dpo_common_conf "$command"
spark_dpo_require_standalone_secret

workers="${SPARK_DPO_WORKERS:-2}"
cores="${SPARK_DPO_EXECUTOR_CORES:-4}"
args=(
  "$(spark_submit_bin)"
  --master "$master"
  --deploy-mode "${SPARK_DPO_DEPLOY_MODE:-client}"
  --name "spark-dpo $command"
  --class io.sparkdpo.cli.Main
  "${SPARK_DPO_CONF[@]}"
  # Standalone has no executor count: cap the cores so exactly W executors of C cores start.
  --conf "spark.cores.max=$((workers * cores))"
  "$jar"
  "$@"
)
spark_dpo_run "${args[@]}"
