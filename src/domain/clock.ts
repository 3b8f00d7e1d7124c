/** Injected time source, so schedulers and timeouts can be tested with fake time. */
export interface Clock {
  /** Unix milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
