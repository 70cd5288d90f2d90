/**
 * Builds the native addon with cmake-js (offline: package.json "binary.napi_versions" makes cmake-js
 * use the bundled node-api headers). Called by `turbo run build`, never by an npm install hook.
 *
 * Decides the CUDA backend: EXPERTMESH_CUDA=ON|OFF|AUTO (default AUTO = on when nvcc is found) and
 * prints which way it went. The whole cmake log is kept in build/build.log.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatTable, missingArchitectures, parsePtxasReport, sassArchitectures, spillViolations } from "./ptxas-report.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const mode = (process.env.EXPERTMESH_CUDA ?? "AUTO").toUpperCase();
if (!["AUTO", "ON", "OFF"].includes(mode)) {
  console.error(`EXPERTMESH_CUDA must be AUTO, ON or OFF (got "${process.env.EXPERTMESH_CUDA}")`);
  process.exit(2);
}

function findNvcc(): string | undefined {
  const candidates = [process.env.CUDACXX, process.env.CUDA_HOME && join(process.env.CUDA_HOME, "bin/nvcc")];
  for (const c of candidates) if (c && existsSync(c)) return c;
  const which = spawnSync("sh", ["-c", "command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null"], {
    encoding: "utf8",
  });
  const found = which.stdout.trim().split("\n")[0];
  return found ? found : undefined;
}

const nvcc = mode === "OFF" ? undefined : findNvcc();
const cudaFlag = mode === "OFF" || (mode === "AUTO" && !nvcc) ? "OFF" : "ON";
const args = [
  "build",
  "--log-level",
  "warn",
  "--parallel",
  String(Number(process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? 2)),
  `--CDEXPERTMESH_CUDA=${cudaFlag}`,
];
if (nvcc) args.push(`--CDCMAKE_CUDA_COMPILER=${nvcc}`);

// A configure step that failed leaves a cache without a build file; cmake-js would not reconfigure.
const buildDir = join(root, "build");
if (!existsSync(join(buildDir, "build.ninja")) && !existsSync(join(buildDir, "Makefile"))) {
  rmSync(join(buildDir, "CMakeCache.txt"), { force: true });
}

console.log(`[kernels] CUDA backend: ${cudaFlag}${nvcc ? ` (nvcc: ${nvcc})` : " (nvcc not found)"}`);
const started = Date.now();
const r = spawnSync(join(root, "../node_modules/.bin/cmake-js"), args, { cwd: root, encoding: "utf8" });
mkdirSync(join(root, "build"), { recursive: true });
const log = `${r.stdout}\n${r.stderr}`;
writeFileSync(join(root, "build/build.log"), log);
for (const line of log.split("\n")) {
  if (/expertmesh:|error:|warning:/i.test(line)) console.log(`[kernels] ${line.trim()}`);
}
if (r.status !== 0) {
  console.error(log.split("\n").slice(-60).join("\n"));
  console.error(`[kernels] build failed (full log: kernels/build/build.log)`);
  process.exit(r.status ?? 1);
}
if (cudaFlag === "ON") {
  const cache = readFileSync(join(buildDir, "CMakeCache.txt"), "utf8");
  const archs = /^EXPERTMESH_CUDA_ARCHITECTURES:STRING=(.*)$/m.exec(cache)?.[1] ?? "?";
  const cuObjects = readdirSync(buildDir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".cu.o"));
  console.log(
    `[kernels] CUDA sources compiled: ${cuObjects.length} object(s) for ${archs
      .split(";")
      .map((a) => `sm_${a}`)
      .join(", ")}`,
  );
  // ptxas's report per gptoss_cuda object (kept by scripts/keep-ptxas-report.sh): the per-kernel table,
  // also written to build/ptxas-report.log, and the build fails when a decode kernel spills.
  const objDir = join(buildDir, "CMakeFiles/gptoss_cuda.dir");
  // Objects whose source is gone (a renamed .cu) linger in a reused build directory: not this build's.
  const objects = readdirSync(objDir, { recursive: true, encoding: "utf8" }).filter(
    (f) => f.endsWith(".cu.o") && existsSync(join(root, f.slice(0, -2))),
  );
  const reports = objects.map((f) => join(objDir, `${f}.ptxas.txt`));
  const unreported = objects.filter((_, i) => !existsSync(reports[i] as string));
  const usage = parsePtxasReport(
    reports
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f, "utf8"))
      .join("\n"),
  );
  const table = formatTable(usage);
  writeFileSync(join(buildDir, "ptxas-report.log"), `${table}\n`);
  console.log(`[kernels] ptxas per kernel and architecture (smem: static shared memory; also in build/ptxas-report.log):`);
  for (const line of table.split("\n")) console.log(`[kernels]   ${line}`);
  const problems = [
    ...unreported.map((f) => `no ptxas report for ${f} (scripts/keep-ptxas-report.sh did not run?)`),
    ...(usage.length === 0 ? ["ptxas reported no kernel at all"] : []),
    ...missingArchitectures(usage, sassArchitectures(archs.split(";"))),
    ...spillViolations(usage),
  ];
  if (problems.length > 0) {
    for (const p of problems) console.error(`[kernels] ${p}`);
    console.error("[kernels] build failed: ptxas resource check (decode kernels must not spill; rule in scripts/ptxas-report.ts)");
    process.exit(1);
  }
}
console.log(`[kernels] built build/Release/expertmesh_kernels.node in ${((Date.now() - started) / 1000).toFixed(1)}s`);
