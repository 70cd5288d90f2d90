/**
 * Child processes a test started that must not outlive the test process. A test body that timed out keeps
 * running after its cleanup hooks ran, and a service it starts then is never stopped by them: left alone it
 * outlives the run (an orchestrated worker retries its membership forever) and holds the run's output open.
 */
import type { ChildProcess } from "node:child_process";

const live = new Set<ChildProcess>();
let hooked = false;

/** SIGKILLs `child` when this process exits, if it is still running then. */
export function killOnExit<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.once("exit", killLive);
    // A test runner ends a worker process whose event loop stays busy (a live child keeps it so) with
    // SIGTERM, which skips "exit": kill the children, then die of the signal as before.
    process.once("SIGTERM", () => {
      killLive();
      process.kill(process.pid, "SIGTERM");
    });
  }
  return child;
}

function killLive(): void {
  for (const c of live) c.kill("SIGKILL");
}
