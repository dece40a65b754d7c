#!/usr/bin/env bash
# The GPU jar's code, compiled and tested without a GPU. `mvn verify` runs this after its own tests (the
# gpu-build-check execution in pom.xml): a nested Maven build of the `cuda-cpu` profile (the `cuda` profile's DJL,
# JNI and PyTorch versions with PyTorch's CPU natives) in its own build folder, running the tests that exercise DJL
# and libtorch. Its output goes to a log file; this prints one line, plus the failures when there are any, and exits
# with the nested build's status so that a failure fails `mvn verify`. Skip it with -Dgpu-build-check.skip.
#
# Options (pom.xml passes them all): --mvn=, --build-dir=, --log=, --tests= (surefire's -Dtest list), --offline=,
# --local-repo=, --djl-version= and --pytorch-version= (the GPU line's, which the nested build must have used),
# --skip-tests= and --skip-test-build= (-DskipTests, -Dmaven.test.skip: no tests, no check).
set -euo pipefail

declare -A opt
for a in "$@"; do
  case "$a" in
    --*=*) key=${a%%=*}; opt[${key#--}]=${a#*=} ;;
    *) echo "gpu-build-check: unexpected argument: $a" >&2; exit 2 ;;
  esac
done
for key in mvn build-dir log tests offline local-repo djl-version pytorch-version skip-tests skip-test-build; do
  [ -n "${opt[$key]+set}" ] || { echo "gpu-build-check: missing --$key=" >&2; exit 2; }
done
mvn_cmd=${opt[mvn]} build_dir=${opt[build-dir]} log=${opt[log]} djl=${opt[djl-version]} torch=${opt[pytorch-version]}
label="DJL $djl / PyTorch $torch, CPU natives"

if [ "${opt[skip-tests]}" = true ] || [ "${opt[skip-test-build]}" = true ]; then
  echo "gpu-build-check: skipped (tests skipped)"
  exit 0
fi

args=(-B -Pcuda-cpu -Dbuild.dir="$build_dir" -Dmaven.repo.local="${opt[local-repo]}" -Dtest="${opt[tests]}" test)
if [ "${opt[offline]}" = true ]; then
  args=(-o "${args[@]}")
fi

mkdir -p "$(dirname "$log")"
echo "gpu-build-check: $label: building in $build_dir (log: $log)"
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
  for artifact in "ai.djl:api:jar:$djl:" "ai.djl.pytorch:pytorch-jni:jar:$torch-$djl:" \
      "ai.djl.pytorch:pytorch-native-cpu:jar:linux-x86_64:$torch:"; do
    if ! grep -qF "$artifact" "$build_dir/dependency-list.txt"; then
      echo "gpu-build-check: $label: the build's classpath lacks $artifact ($build_dir/dependency-list.txt)"
      exit 1
    fi
  done
  echo "gpu-build-check: $label: passed in $took (${totals:-no test totals in the log})"
  exit 0
fi
echo "gpu-build-check: $label: FAILED after $took (${totals:-the build failed before tests ran})"
# The failing tests, or the build errors when compilation failed.
grep -E '^\[ERROR\]' "$log" | sed 's/ -> \[Help 1\]$//' |
  grep -v -E '^\[ERROR\] *$|\[Help 1\] http|Re-run Maven|full stack trace|For more information about' | head -n 40 || true
echo "gpu-build-check: full log: $log"
exit "$status"
