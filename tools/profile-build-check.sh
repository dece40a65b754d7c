#!/usr/bin/env bash
# A profile's build, compiled and tested inside `mvn verify`. pom.xml runs it after the build's own tests, once per
# checked profile: `cuda-cpu` (the GPU jar's DJL, JNI and PyTorch versions with PyTorch's CPU natives; docs/gpu.md) and
# `spark-3.5` (Spark 3.5 / Scala 2.12; docs/spark-3.5.md). Each is a nested Maven build in its own build folder that
# runs the given tests. Its output goes to a log file; this prints one line, plus the failures when there are any,
# and exits with the nested build's status so that a failure fails `mvn verify`. Skip one with -D<name>.skip.
#
# Options (pom.xml passes them all): --name= (the check's name in messages), --profile=, --label= (what the profile
# builds, for messages), --expect= (comma-separated "group:artifact:jar[:classifier]:version:" entries that the
# nested build's classpath must list: proof that the profile switched it), --mvn=, --build-dir=, --log=, --tests=
# (surefire's -Dtest list), --offline=, --local-repo=, --skip-tests= and --skip-test-build= (-DskipTests,
# -Dmaven.test.skip: no tests, no check).
set -euo pipefail

declare -A opt
for a in "$@"; do
  case "$a" in
    --*=*) key=${a%%=*}; opt[${key#--}]=${a#*=} ;;
    *) echo "profile-build-check: unexpected argument: $a" >&2; exit 2 ;;
  esac
done
for key in name profile label expect mvn build-dir log tests offline local-repo skip-tests skip-test-build; do
  [ -n "${opt[$key]+set}" ] || { echo "profile-build-check: missing --$key=" >&2; exit 2; }
done
name=${opt[name]} mvn_cmd=${opt[mvn]} build_dir=${opt[build-dir]} log=${opt[log]} label=${opt[label]}

if [ "${opt[skip-tests]}" = true ] || [ "${opt[skip-test-build]}" = true ]; then
  echo "$name: skipped (tests skipped)"
  exit 0
fi

args=(-B -P"${opt[profile]}" -Dbuild.dir="$build_dir" -Dmaven.repo.local="${opt[local-repo]}" -Dtest="${opt[tests]}"
  test)
if [ "${opt[offline]}" = true ]; then
  args=(-o "${args[@]}")
fi

mkdir -p "$(dirname "$log")"
echo "$name: $label: building in $build_dir (log: $log)"
start=$SECONDS
status=0
"$mvn_cmd" "${args[@]}" >"$log" 2>&1 || status=$?
elapsed=$((SECONDS - start))
took="$((elapsed / 60)) min $((elapsed % 60)) s"

# Surefire's totals: the last "Tests run:" line that does not name a class.
totals=$(grep -E '^\[(INFO|WARNING|ERROR)\] Tests run: [0-9]+, ' "$log" | grep -v ' -- in ' | tail -n 1 |
  sed -E 's/^\[[A-Z]+\] //') || true
# The profile must really have switched the classpath (the build lists its dependencies there).
if [ "$status" -eq 0 ]; then
  IFS=, read -r -a expected <<<"${opt[expect]}"
  for artifact in "${expected[@]}"; do
    if ! grep -qF "$artifact" "$build_dir/dependency-list.txt"; then
      echo "$name: $label: the build's classpath lacks $artifact ($build_dir/dependency-list.txt)"
      exit 1
    fi
  done
  echo "$name: $label: passed in $took (${totals:-no test totals in the log})"
  exit 0
fi
echo "$name: $label: FAILED after $took (${totals:-the build failed before tests ran})"
# The failing tests, or the build errors when compilation failed.
grep -E '^\[ERROR\]' "$log" | sed 's/ -> \[Help 1\]$//' |
  grep -v -E '^\[ERROR\] *$|\[Help 1\] http|Re-run Maven|full stack trace|For more information about' | head -n 40 || true
echo "$name: full log: $log"
exit "$status"
