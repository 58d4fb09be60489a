/**
 * 429 slows the worker, not the order (DESIGN "Errors and retries"). One Pacer per upstream
 * per process — every invocation in a Lambda container, every in-process handler locally —
 * sits in front of each attempt (lib/clients/http.ts):
 *
 * - Until an upstream answers 429 it costs nothing: every call goes at once.
 * - The first 429 holds every call until its `Retry-After` has passed, then releases them one
 *   by one at the rate the upstream accepted in the second before the 429 (times `backoff`),
 *   instead of all at once, which would only buy the next round of 429s.
 * - As TCP does: until the next 429 the rate grows by `slowStart` of itself per second (the
 *   first estimate may be low: our own pipeline may have been slow); after it, additive
 *   increase — `increase` × the rate set at that cut, per second (scales with the upstream:
 *   5 % of 10/s is 0.5/s) — and multiplicative decrease: a 429 cuts the rate by `backoff`, and
 *   at least to `backoff` × the rate the upstream accepted in the second before, at most once per round (429s of calls sent before the last cut are the same overshoot). The
 *   rate only grows from calls accepted while others wait.
 * - A retry (a call that was refused) goes before first tries: it has waited already.
 * - After `relaxAfterMs` without a 429 it stops pacing.
 *
 * Waiting here counts against the call's total deadline (ky races its hooks against
 * `totalTimeout`) and ends when the call's abort signal fires.
 */
export interface PacerOptions {
  /** milliseconds; Date.now by default (tests use fake timers) */
  now?: () => number;
  /** the slowest it paces, in requests per second */
  minRate?: number;
  /** share of the rate set at the last cut added per second of accepted calls while calls wait */
  increase?: number;
  /** share of itself the rate grows by per second until the first cut after the first estimate */
  slowStart?: number;
  /** factor a 429 cuts the rate by (the first one: the rate the upstream had accepted) */
  backoff?: number;
  /** back to unpaced after this long without a 429 */
  relaxAfterMs?: number;
  /** the pause after the first 429 when it names no Retry-After */
  defaultRetryAfterMs?: number;
}

export interface PacerState {
  pacing: boolean;
  /** requests per second released while pacing */
  rate?: number;
  /** calls waiting for their turn */
  waiting: number;
  /** 429s seen since the pacer was created */
  throttled: number;
}

interface Waiter {
  retry: boolean;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

const WINDOW_MS = 1000;

export class Pacer {
  private readonly now: () => number;
  private readonly minRate: number;
  private readonly increase: number;
  private readonly slowStart: number;
  private readonly backoff: number;
  private readonly relaxAfterMs: number;
  private readonly defaultRetryAfterMs: number;

  private pacing = false;
  /** requests per second; undefined until the first release after the first 429 estimates it */
  private rate: number | undefined;
  private pausedUntil = 0;
  private nextAt = 0;
  /** when set, the next release re-estimates the rate from the second before this moment */
  private estimateAt: number | undefined;
  private lastCutAt = -Infinity;
  /** requests per second added per second of pacing, until the next cut */
  private step = 0;
  /** between the first estimate and the next 429: grow by a share of the rate */
  private starting = false;
  private lastThrottledAt = -Infinity;
  /** send times of accepted calls, for the accepted rate */
  private accepted: number[] = [];
  private readonly waiters: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private throttled = 0;

  constructor(options: PacerOptions = {}) {
    this.now = options.now ?? Date.now;
    this.minRate = options.minRate ?? 1;
    this.increase = options.increase ?? 0.05;
    this.slowStart = options.slowStart ?? 0.2;
    this.backoff = options.backoff ?? 0.9;
    this.relaxAfterMs = options.relaxAfterMs ?? 60_000;
    this.defaultRetryAfterMs = options.defaultRetryAfterMs ?? 1000;
  }

  /**
   * Resolves when this call may go; rejects with the signal's reason if it aborts first. A
   * `retry` goes before the first tries that wait.
   */
  acquire(signal?: AbortSignal, retry = false): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.pacing && this.waiters.length === 0 && this.now() - this.lastThrottledAt > this.relaxAfterMs) this.relax();
    if (!this.pacing) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { retry, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      const firstTry = retry ? this.waiters.findIndex((w) => !w.retry) : -1;
      if (firstTry >= 0) this.waiters.splice(firstTry, 0, waiter);
      else this.waiters.push(waiter);
      this.pump();
    });
  }

  /**
   * What the upstream answered to a call sent at `sentAt` (this pacer's clock). A 429 starts
   * or tightens the pacing; an accepted call (any other status) counts toward the accepted rate.
   */
  settled(sentAt: number, status: number, retryAfterMs?: number): void {
    const now = this.now();
    if (status !== 429) {
      this.accepted.push(sentAt);
      this.prune(now);
      // Additive increase, only while calls wait: an idle pacer learns nothing about the limit.
      if (this.pacing && this.rate !== undefined && this.waiters.length > 0) this.rate += this.starting ? this.slowStart : this.step / this.rate;
      return;
    }
    this.throttled += 1;
    this.lastThrottledAt = now;
    if (!this.pacing) {
      // Everyone was over the limit: hold every call until Retry-After, then pace.
      this.pacing = true;
      this.rate = undefined;
      this.pausedUntil = now + (retryAfterMs ?? this.defaultRetryAfterMs);
      this.lastCutAt = now;
      this.estimateAt = now;
      this.pump();
      return;
    }
    // Sent before the last cut: part of the overshoot that cut already answered.
    if (sentAt < this.lastCutAt) return;
    this.lastCutAt = now;
    // Still waiting for the first estimate: it will take this 429 into account.
    if (this.rate !== undefined) {
      // Below what the upstream demonstrably accepted in the last second, not just a share of
      // our own overshoot: a cut that still exceeds the limit buys the refused call (first in
      // line as a retry) a second 429.
      // (No call accepted in that second tells nothing about the limit.)
      const accepted = this.estimate(now);
      this.setRate(accepted > 0 ? Math.min(this.rate * this.backoff, accepted) : this.rate * this.backoff);
      this.starting = false;
    }
  }

  /** How long a call that starts waiting now would wait, about: what to tell SQS when we give up. */
  backlogMs(): number {
    if (!this.pacing) return 0;
    const now = this.now();
    const interval = 1000 / (this.rate ?? this.minRate);
    return Math.max(0, this.pausedUntil - now, this.nextAt - now) + this.waiters.length * interval;
  }

  state(): PacerState {
    return { pacing: this.pacing, ...(this.rate === undefined ? {} : { rate: this.rate }), waiting: this.waiters.length, throttled: this.throttled };
  }

  private relax(): void {
    this.pacing = false;
    this.rate = undefined;
    this.estimateAt = undefined;
  }

  private setRate(rate: number): void {
    this.rate = Math.max(this.minRate, rate);
    this.step = this.increase * this.rate;
  }

  /** `backoff` × the rate accepted in the second before `at`. */
  private estimate(at: number): number {
    const accepted = this.accepted.filter((sentAt) => sentAt > at - WINDOW_MS && sentAt <= at).length;
    return this.backoff * accepted;
  }

  private prune(now: number): void {
    const oldest = Math.min(now, this.estimateAt ?? now) - WINDOW_MS;
    let drop = 0;
    while (drop < this.accepted.length && this.accepted[drop]! <= oldest) drop++;
    if (drop > 0) this.accepted.splice(0, drop);
  }

  /** Releases whoever is due and sets one timer for the next. */
  private pump(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.waiters.length > 0) {
      if (!this.pacing) {
        for (const waiter of this.waiters.splice(0)) this.release(waiter);
        return;
      }
      const now = this.now();
      const due = Math.max(this.pausedUntil, this.nextAt);
      if (now < due) {
        this.timer = setTimeout(() => this.pump(), due - now);
        return;
      }
      if (this.estimateAt !== undefined) {
        this.setRate(this.estimate(this.estimateAt));
        this.starting = true;
        this.estimateAt = undefined;
        this.prune(now);
      }
      const interval = 1000 / this.rate!;
      // A timer that fired late catches up by less than one interval, never with a burst.
      this.nextAt = (now - due < interval ? due : now) + interval;
      this.release(this.waiters.shift()!);
    }
  }

  private release(waiter: Waiter): void {
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.resolve();
  }
}

/** `Retry-After` in milliseconds: seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
