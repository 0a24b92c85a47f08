/**
 * Learning-rate schedules. Cosine (with linear warm-up) is a function of the step; reduce-on-plateau reacts to the
 * validation metric at each epoch's end and keeps state, which checkpoints carry so a resumed run continues exactly.
 */
import type { ScheduleConfig } from './config.js';

export interface ScheduleState {
  lr: number;
  best: number;
  badEpochs: number;
}

export class LearningRateSchedule {
  private current: ScheduleState;

  constructor(
    private readonly config: ScheduleConfig,
    private readonly baseLr: number,
    private readonly totalSteps: number,
    private readonly stepsPerEpoch: number,
  ) {
    this.current = { lr: baseLr, best: -Infinity, badEpochs: 0 };
  }

  /** The rate for the 0-based optimizer step `step`. */
  at(step: number): number {
    const c = this.config;
    if (c.type === 'constant') return this.baseLr;
    if (c.type === 'plateau') return this.current.lr;
    const warmup = Math.round(c.warmupEpochs * this.stepsPerEpoch);
    if (step < warmup) return (this.baseLr * (step + 1)) / warmup;
    const span = Math.max(1, this.totalSteps - warmup);
    const progress = Math.min(1, (step - warmup) / span);
    return c.minLr + ((this.baseLr - c.minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }

  /** Reduce-on-plateau's reaction to an epoch's validation metric (higher is better); other schedules ignore it. */
  epochEnd(metric: number): void {
    const c = this.config;
    if (c.type !== 'plateau' || !Number.isFinite(metric)) return;
    if (metric > this.current.best) {
      this.current = { ...this.current, best: metric, badEpochs: 0 };
      return;
    }
    const bad = this.current.badEpochs + 1;
    if (bad > c.patience) this.current = { ...this.current, lr: Math.max(c.minLr, this.current.lr * c.factor), badEpochs: 0 };
    else this.current = { ...this.current, badEpochs: bad };
  }

  state(): ScheduleState {
    return { ...this.current };
  }

  load(state: ScheduleState): void {
    this.current = { ...state };
  }
}
