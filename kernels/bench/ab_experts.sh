#!/usr/bin/env bash
# ab_experts.sh — the serving-precision expert product of BASE (default HEAD) against the working tree's,
# in one bench_experts binary that alternates layers between them (bench_experts.cpp explains why), on
# weights laid out as Rows (the kernel in moe_mxfp4_q8_matmul.cpp). The Rows16 kernel against it, in one
# build: bench_experts TOKENS 16 8 0 0 ab.
# Usage: kernels/bench/ab_experts.sh [BASE_REV]   (after `npm run build` in kernels/)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-HEAD}
src=cpu/moe_mxfp4_q8_matmul.cpp
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Each build in its own namespace; the product it falls back to (exact path) stays the library's.
rename() {
  sed -e "s|^namespace gptoss::cpu {|namespace gptoss::cpu { void f32_mxfp4w_matmul(const ExpertMatmul*, int); }\nnamespace gptoss::lab_$1 {\nusing namespace gptoss::cpu;|" \
      -e '/^void f32_mxfp4w_matmul(const ExpertMatmul\* jobs, int num_jobs);$/d'
}
git show "$base:kernels/$src" | rename A > "$out/a.cpp"
rename B < "$src" > "$out/b.cpp"
g++ -O3 -std=c++20 -fopenmp -DEXPERTS_AB -Iinclude -I. -Icpu "$out/a.cpp" "$out/b.cpp" bench/bench_experts.cpp \
  build/libgptoss_cpu.a -o "$out/ab"
echo "A = $base:$src, B = working tree"
for tokens in 1 4 16; do "$out/ab" "$tokens" 16 8 0 0 rows; done
for n in 2 4; do "$out/ab" 1 8 8 1 "$n" rows; done
