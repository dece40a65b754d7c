#!/usr/bin/env bash
# Submits one spark-dpo command to YARN (HADOOP_CONF_DIR or YARN_CONF_DIR must name the cluster's configuration).
#   SPARK_DPO_WORKERS=4 deploy/yarn/submit.sh train --config conf/cluster-s3.yaml --data s3a://b/referenced --workers 4
# Client mode by default (progress on this terminal); SPARK_DPO_DEPLOY_MODE=cluster runs the driver in the YARN
# application master. Settings: deploy/common.sh and deploy/README.md.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

[ $# -ge 1 ] || spark_dpo_usage
command="$1"
if [ -z "${HADOOP_CONF_DIR:-}" ] && [ -z "${YARN_CONF_DIR:-}" ]; then
  echo "spark-dpo: set HADOOP_CONF_DIR (or YARN_CONF_DIR) to the cluster's Hadoop configuration" >&2
  exit 2
fi
jar="$(spark_dpo_jar)"
spark_dpo_common_conf "$command"

args=(
  "$(spark_submit_bin)"
  --master yarn
  --deploy-mode "${SPARK_DPO_DEPLOY_MODE:-client}"
  --name "spark-dpo $command"
  --class io.sparkdpo.cli.Main
  "${SPARK_DPO_CONF[@]}"
  --conf "spark.executor.instances=${SPARK_DPO_WORKERS:-2}"
  --conf "spark.yarn.maxAppAttempts=1"
)
if [ -n "${SPARK_DPO_YARN_QUEUE:-}" ]; then
  args+=(--queue "$SPARK_DPO_YARN_QUEUE")
fi
args+=("$jar" "$@")
spark_dpo_run "${args[@]}"
