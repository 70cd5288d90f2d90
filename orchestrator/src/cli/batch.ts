#!/usr/bin/env node
/** Process entry of `expertmesh batch …` (batch-cli.ts). */
import { runBatchCli } from "./batch-cli.ts";

process.exitCode = await runBatchCli(process.argv.slice(2), {
  env: process.env,
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  tty: process.stderr.isTTY === true,
});
