#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript, spark.worker.resource.gpu.discoveryScript):
# prints {"name": "gpu", "addresses": ["0", "1", ...]}, the GPUs this process may use, as CUDA ordinals, which is
# what spark-dpo passes to DJL's Device.gpu(n). When CUDA_VISIBLE_DEVICES restricts the process (YARN and
# Kubernetes isolation set it, or you do), CUDA renumbers the visible GPUs from 0, so so do we.
set -euo pipefail

if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
  IFS=',' read -r -a visible <<< "$CUDA_VISIBLE_DEVICES"
  count=0
  for v in "${visible[@]}"; do
    [ -n "$v" ] && [ "$v" != "-1" ] && count=$((count + 1))
  done
  indices=()
  for ((i = 0; i < count; i++)); do indices+=("$i"); done
else
  if ! command -v nvidia-smi > /dev/null 2>&1; then
    echo "getGpusResources.sh: nvidia-smi not found on $(hostname): no NVIDIA driver on this host" >&2
    exit 1
  fi
  mapfile -t indices < <(nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' ' | grep -E '^[0-9]+$')
fi

json=""
for i in "${indices[@]}"; do
  json+="${json:+, }\"$i\""
done
echo "{\"name\": \"gpu\", \"addresses\": [$json]}"
