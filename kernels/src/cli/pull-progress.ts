/** Download progress on stderr: a redrawn bar on a terminal, a plain line now and then in a log. */

const TTY_REDRAW_MS = 200;
const LOG_LINE_MS = 10_000;
const BAR_WIDTH = 30;

export interface ProgressIo {
  err: (text: string) => void;
  tty: boolean;
}

function gb(n: number): string {
  return (n / 1e9).toFixed(2);
}

export class Progress {
  done = 0;
  private current = "";
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;

  private readonly total: number;
  private readonly io: ProgressIo;

  constructor(total: number, io: ProgressIo) {
    this.total = total;
    this.io = io;
    this.timer = setInterval(() => this.draw(), io.tty ? TTY_REDRAW_MS : LOG_LINE_MS);
    this.timer.unref();
  }

  file(path: string): void {
    this.current = path;
    if (!this.io.tty) this.io.err(`[pull] ${path}\n`);
  }

  add(n: number): void {
    this.done += n;
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.total > 0) this.draw();
    if (this.io.tty && this.total > 0) this.io.err("\n");
  }

  private draw(): void {
    // Bytes re-fetched after a failed check can push done past total; the bar stays full.
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const seconds = Math.max(1e-3, (performance.now() - this.started) / 1000);
    const mbps = this.done / 1e6 / seconds;
    const eta = mbps > 0 ? Math.max(0, (this.total - this.done) / 1e6 / mbps) : 0;
    const figures = `${(100 * fraction).toFixed(1)}% ${gb(this.done)}/${gb(this.total)} GB ${mbps.toFixed(0)} MB/s ETA ${eta.toFixed(0)}s`;
    if (!this.io.tty) {
      this.io.err(`[pull] ${figures}\n`);
      return;
    }
    const filled = Math.round(fraction * BAR_WIDTH);
    this.io.err(`\r[pull] ${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)} ${figures} ${this.current}\x1b[K`);
  }
}
