#!/usr/bin/env bash
# Installs Sluice into a temporary prefix, builds examples/plugin-template against the
# installed SDK with a separate CMake project (out of tree, as a third party would), then
# loads the plugin and runs it in a DAG with the installed binary.
#
# Usage: out_of_tree_plugin_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d /tmp/sluice-sdk-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/sluice/plugin_abi.h"
test -f "$work/prefix/lib/cmake/SluiceSDK/SluiceSDKConfig.cmake"
test -f "$work/prefix/lib/sluice/plugins/core.so"
# One version from one place: the package's version is the plugin ABI in plugin_abi.h, and
# `sluice version` prints it.
header="$src/sdk/include/sluice/plugin_abi.h"
abi="$(sed -n 's/^#define SLUICE_ABI_MAJOR \([0-9]*\)$/\1/p' "$header").$(sed -n 's/^#define SLUICE_ABI_MINOR \([0-9]*\)$/\1/p' "$header")"
grep -q "set(PACKAGE_VERSION \"$abi\")" "$work/prefix/lib/cmake/SluiceSDK/SluiceSDKConfigVersion.cmake"
"$work/prefix/bin/sluice" version | grep -q "(plugin ABI $abi)"

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$src/examples/plugin-template" -B "$work/plugin" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
cmake --build "$work/plugin" -j 2 >/dev/null
test -f "$work/plugin/textstats.so"
# Only the entry point is exported, by an outside plugin and by the shipped ones.
for so in "$work/plugin/textstats.so" "$work/prefix/lib/sluice/plugins/"*.so; do
  exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sort -u | tr '\n' ' ')
  if [ "$exported" != "sluice_plugin_entry_v1 " ]; then
    echo "$so exports more than its entry point: $exported" >&2
    exit 1
  fi
done

sluice="$work/prefix/bin/sluice"
export SLUICE_PLUGIN_PATH="$work/plugin"
"$sluice" plugins show textstats.count | grep -q "min_words"
"$sluice" dag validate "$src/examples/plugin-template/dags/text_stats.toml"
"$sluice" run "$src/examples/plugin-template/dags/text_stats.toml" --state-dir "$work/state" | tee "$work/run.log"
grep -q "count  success" "$work/run.log"
grep -q "celebrate  success" "$work/run.log"   # 12 lines x 9 words = 108 >= 100
run_id=$("$sluice" runs list --state-dir "$work/state" --json | sed -n 's/.*"run_id": "\(.*\)".*/\1/p' | head -1)
"$sluice" logs "$run_id" count --state-dir "$work/state" | grep -q "poem.txt: 12 lines, 108 words"

# With too few words the step skips itself, and the task downstream is skipped too.
"$sluice" run "$src/examples/plugin-template/dags/text_stats.toml" --state-dir "$work/state" \
  --param lines=1 | tee "$work/run2.log"
grep -q "celebrate  skipped" "$work/run2.log"
echo "out-of-tree plugin: built, loaded and run"
