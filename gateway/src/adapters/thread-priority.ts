/**
 * Lowers the calling thread's scheduling priority. On Linux a nice value belongs to a thread, so a
 * worker thread that calls this yields the cores to the event loop and to the engine (R23) while the
 * process keeps its own priority.
 */
import { setPriority } from "node:os";

export function lowerThreadPriority(nice: number | undefined): void {
  if (!nice) return;
  try {
    setPriority(0, nice); // 0: the calling thread
  } catch {
    // A platform without per-thread priorities: the thread runs at the process's priority.
  }
}
