/**
 * The contract of GET /dashboard/api/state: the gateway (http/routes/dashboard.ts, domain/dashboard/)
 * answers it, this page reads it. Types only: neither side's code reaches the other.
 */

export type GroupState = "forming" | "ready" | "draining";

export interface RankView {
  rank: number;
  workerId: string;
  state: "starting" | "ready" | "draining" | "unknown";
}

export interface GroupView {
  id: string;
  model: string;
  device: string;
  state: GroupState;
  worldSize: number;
  ranks: RankView[];
  load: { running: number; waiting: number; kvCacheUsage: number; tokensPerS: number | null };
}

export interface BatchView {
  id: string;
  /** The OpenAI batch status. */
  status: string;
  total: number;
  completed: number;
  failed: number;
  createdAt: number;
  linesPerS: number | null;
}

export interface TrafficPoint {
  /** Unix ms of the later of the two readings the point is between. */
  t: number;
  requestsPerS: number;
  /** Answers with an HTTP status of 400 and up, per second, by status. */
  errorsPerS: Record<string, number>;
  ttftP50: number | null;
  ttftP99: number | null;
  interTokenP50: number | null;
  interTokenP99: number | null;
}

export interface DashboardState {
  now: number;
  sampleMs: number;
  discoveryHealthy: boolean;
  groups: GroupView[];
  batches: BatchView[] | null;
  traffic: TrafficPoint[];
}
