/** Regularizers by name, as flags and config keys use them. */
import { UserError } from "../util/errors.js";
import type { Regularizer } from "./regularizer.js";
import { l2 } from "./l2.js";
import { spectral } from "./spectral.js";
import { flatness } from "./flatness.js";
import { gcPenalty } from "./gcPenalty.js";
import { inputNoise, labelNoise } from "./noise.js";

export type { Regularizer, Batch, RegState, PenaltyContext } from "./regularizer.js";
export { l2, spectral, flatness, gcPenalty, inputNoise, labelNoise };

export interface RegularizerConfig {
  l2?: number;
  spectral?: number;
  flatness?: number;
  gc?: number;
  /** Probes for the gc penalty's estimate; 0 = exact. */
  gcProbes?: number;
  inputNoise?: number;
  labelNoise?: number;
}

export const REGULARIZER_NAMES = ["l2", "spectral", "flatness", "gc", "input-noise", "label-noise"] as const;

/** The regularizers a config switches on (strength > 0), in a fixed order. */
export function buildRegularizers(cfg: RegularizerConfig): Regularizer[] {
  const out: Regularizer[] = [];
  const check = (name: string, v: number | undefined, max = Infinity) => {
    if (v === undefined) return false;
    if (!Number.isFinite(v) || v < 0 || v > max)
      throw new UserError(`--${name} must be a number in [0, ${max}], got ${v}`);
    return v > 0;
  };
  if (check("input-noise", cfg.inputNoise)) out.push(inputNoise(cfg.inputNoise!));
  if (check("label-noise", cfg.labelNoise, 1)) out.push(labelNoise(cfg.labelNoise!));
  if (check("l2", cfg.l2)) out.push(l2(cfg.l2!));
  if (check("spectral", cfg.spectral)) out.push(spectral(cfg.spectral!));
  if (check("flatness", cfg.flatness)) out.push(flatness(cfg.flatness!));
  if (check("gc", cfg.gc)) out.push(gcPenalty(cfg.gc!, cfg.gcProbes ?? 0));
  return out;
}
