/**
 * Signals while `podnet` runs a command: from the first moment, SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT are caught (so an interrupt during set-up or
 * teardown never kills podnet half-way), remembered, and forwarded to the
 * command once it runs.
 */
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

export class SignalGuard {
  /** The first signal received, if any. */
  received?: NodeJS.Signals;
  #child?: ChildProcess;
  readonly #on = (sig: NodeJS.Signals) => {
    this.received ??= sig;
    this.#child?.kill(sig);
  };

  constructor() {
    for (const s of SIGNALS) process.on(s, this.#on);
  }

  /** The exit code a shell reports for death by the received signal. */
  get exitCode(): number {
    return 128 + (this.received ? constants.signals[this.received] : 0);
  }

  /** Forwards signals to `child` and resolves with its exit code (127 if it cannot start). */
  wait(child: ChildProcess, what: string): Promise<number> {
    this.#child = child;
    if (this.received) child.kill(this.received);
    return new Promise((resolve) => {
      child.on('error', (err) => {
        process.stderr.write(`podnet: cannot run ${what}: ${err.message}\n`);
        resolve(127);
      });
      child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
  }

  release(): void {
    for (const s of SIGNALS) process.off(s, this.#on);
  }
}
