/**
 * Admission to the worker pool for requests whose uploads are not read yet.
 *
 * A request is admitted while the pool has room (an idle worker or a free place in its queue) not already promised
 * to another admitted request whose upload is still being read; the promise ends when the analysis is submitted
 * (or the request fails), so an admitted upload is never refused after it was read. A request that finds no room
 * waits, its upload unread in the kernel's socket buffers, for at most `waitMs`: it is admitted in arrival order as
 * soon as room appears, or refused (503) when the wait is over or when `maxWaiting` requests already wait. A client
 * that leaves while waiting is only seen once admitted (its socket is not read until then), and its analysis is
 * then cancelled before it runs, like a queued one. Under overload the workers then take the next analysis the moment one finishes,
 * and an impatient client retries at most once per wait instead of as fast as 503s come back: refusing at once
 * spent the cores on refusals and lost throughput (bench/results/serve.json).
 */
export interface AdmissionOptions {
  /** How long a request that finds no room waits for one before 503; 0 refuses at once. */
  waitMs: number;
  /** Requests allowed to wait at once; more are refused at once. */
  maxWaiting: number;
}

/** Room promised to one admitted request; release() when its analysis is submitted or it ends (idempotent). */
export interface Admission {
  release(): void;
}

interface Waiter {
  admit: (admission: Admission | null) => void;
  timer: NodeJS.Timeout;
}

export class AdmissionGate {
  private promised = 0;
  private readonly waiting: Waiter[] = [];
  private counters = { admittedAfterWaiting: 0, refusedAfterWaiting: 0, refusedAtOnce: 0 };

  /** `room` counts the analyses the pool would take now without refusing one. */
  constructor(
    private readonly room: () => number,
    private readonly options: AdmissionOptions,
  ) {}

  /** Resolves with an admission, or null for a refusal (no room within the wait, or too many waiting). */
  enter(): Promise<Admission | null> {
    if (this.waiting.length === 0 && this.free() > 0) return Promise.resolve(this.promise());
    if (this.options.waitMs <= 0 || this.waiting.length >= this.options.maxWaiting) {
      this.counters.refusedAtOnce++;
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        admit: (admission) => {
          clearTimeout(waiter.timer);
          resolve(admission);
        },
        timer: setTimeout(() => {
          this.counters.refusedAfterWaiting++;
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          resolve(null);
        }, this.options.waitMs),
      };
      this.waiting.push(waiter);
    });
  }

  /** The pool may have room again (an analysis started, finished or left the queue): admit waiters in order. */
  roomChanged(): void {
    while (this.waiting.length > 0 && this.free() > 0) {
      this.counters.admittedAfterWaiting++;
      this.waiting.shift()!.admit(this.promise());
    }
  }

  get stats(): { waiting: number; admittedAfterWaiting: number; refusedAfterWaiting: number; refusedAtOnce: number } {
    return { waiting: this.waiting.length, ...this.counters };
  }

  private free(): number {
    return this.room() - this.promised;
  }

  private promise(): Admission {
    this.promised++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.promised--;
        this.roomChanged();
      },
    };
  }
}
