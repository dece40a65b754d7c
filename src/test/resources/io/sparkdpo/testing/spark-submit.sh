#!/usr/bin/env bash
# bin/spark-submit of the test SPARK_HOME (copied there by io.sparkdpo.testing.SparkHomeFixture). Like Spark's own:
# Spark's launcher (org.apache.spark.launcher.Main) turns the arguments into the driver's java command line (heap,
# extraJavaOptions, module flags, classpath from SPARK_HOME/jars), and this runs it.
set -euo pipefail
SPARK_HOME="$(cd "$(dirname "$0")/.." && pwd)"
export SPARK_HOME
export SPARK_SCALA_VERSION="${SPARK_SCALA_VERSION:-2.13}"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"

# The launcher prints message lines, then an empty (NUL) line, then the arguments each ended by NUL. The launcher's
# exit status is appended as one more NUL-ended field.
cmd=()
started=false
while true; do
  if [ "$started" = false ]; then
    IFS= read -r line || break
    if [ -z "$line" ]; then started=true; else echo "$line" >&2; fi
  else
    IFS= read -r -d '' arg || break
    cmd+=("$arg")
  fi
done < <("$java" -Xmx128m -cp "$SPARK_HOME/jars/*" org.apache.spark.launcher.Main \
           org.apache.spark.deploy.SparkSubmit "$@"; status=$?; printf '\n%d\0' "$status")

# The status field may carry the newline printed before it.
status="${cmd[${#cmd[@]}-1]//$'\n'/}"
unset 'cmd[${#cmd[@]}-1]'
if [ "$status" != 0 ] || [ ${#cmd[@]} -eq 0 ]; then
  echo "spark-submit: Spark's launcher failed (status $status)" >&2
  exit 1
fi
exec "${cmd[@]}"
