#!/usr/bin/env bash
# Submits one spark-dpo command to Kubernetes with spark-submit (cluster mode: the driver is a pod).
#   SPARK_K8S_MASTER=k8s://https://api.example:6443 SPARK_DPO_IMAGE=registry/spark-dpo:0.1.0 \
#     deploy/k8s/submit.sh train --config /opt/spark-dpo/conf/cluster-s3.yaml --data s3a://b/referenced --workers 2
# The image holds Spark and the application jar at /opt/spark-dpo/spark-dpo-app.jar (deploy/README.md shows a
# Dockerfile). For the Spark Operator use deploy/k8s/spark-application.yaml instead.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

[ $# -ge 1 ] || spark_dpo_usage
command="$1"
master="${SPARK_K8S_MASTER:?set SPARK_K8S_MASTER, e.g. k8s://https://kubernetes-api:6443}"
image="${SPARK_DPO_IMAGE:?set SPARK_DPO_IMAGE to an image with Spark and the spark-dpo jar}"
# The jar inside the image (local:// = already on every pod, nothing uploaded).
jar="${SPARK_DPO_JAR:-local:///opt/spark-dpo/spark-dpo-app.jar}"
spark_dpo_common_conf "$command"

# Kubernetes names: lower case, digits and '-'.
name="spark-dpo-$(echo "$command" | tr -c 'a-z0-9\n' '-')"
args=(
  "$(spark_submit_bin)"
  --master "$master"
  --deploy-mode cluster
  --name "$name"
  --class io.sparkdpo.cli.Main
  "${SPARK_DPO_CONF[@]}"
  --conf "spark.executor.instances=${SPARK_DPO_WORKERS:-2}"
  --conf "spark.kubernetes.container.image=$image"
  --conf "spark.kubernetes.namespace=${SPARK_DPO_NAMESPACE:-spark-dpo}"
  --conf "spark.kubernetes.authenticate.driver.serviceAccountName=${SPARK_DPO_SERVICE_ACCOUNT:-spark-dpo}"
  # Requests = limits for the cores, so a training replica is not throttled by its neighbours.
  --conf "spark.kubernetes.executor.request.cores=${SPARK_DPO_EXECUTOR_CORES:-4}"
  --conf "spark.kubernetes.executor.limit.cores=${SPARK_DPO_EXECUTOR_CORES:-4}"
)
if [ "${SPARK_DPO_GPUS:-0}" = "1" ]; then
  # The NVIDIA device plugin exposes nvidia.com/gpu; inside the pod the GPU is ordinal 0.
  args+=(--conf "spark.executor.resource.gpu.vendor=nvidia.com"
         --conf "spark.executor.resource.gpu.discoveryScript=${SPARK_DPO_GPU_DISCOVERY:-/opt/spark-dpo/getGpusResources.sh}")
fi
args+=("$jar" "$@")
spark_dpo_run "${args[@]}"
