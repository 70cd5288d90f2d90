#!/bin/sh
# CUDA compiler launcher for gptoss_cuda (CMakeLists.txt): runs the nvcc command line it is given
# (compiled with --resource-usage) and keeps ptxas's per-kernel report beside the object as
# <object>.ptxas.txt, which scripts/build.ts turns into its table and spill check. The report is kept per
# object so an incremental build, which recompiles nothing, still has every kernel's numbers. Only the
# "ptxas info" lines are held back from the build log; errors and warnings reach it as before.
out=""
prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && out="$a"
  prev="$a"
done
[ -n "$out" ] || exec "$@"
"$@" 2>"$out.ptxas.tmp"
rc=$?
grep -v -e '^ptxas info' -e '^    [0-9]* bytes stack frame, ' "$out.ptxas.tmp" >&2
mv -f "$out.ptxas.tmp" "$out.ptxas.txt"
exit $rc
