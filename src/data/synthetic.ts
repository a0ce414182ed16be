/** Seeded synthetic data sets: sine (1-D regression) and moons, circles, spirals, xor, blobs (2-D classification). */
import { Rng } from "../util/rng.js";
import type { Dataset, Split } from "./dataset.js";

/** The generated data sets: `sine` (1-D regression) and `moons`, `circles`, `spirals`, `xor`, `blobs` (2-D classification). */
export const SYNTHETIC_NAMES = ["sine", "moons", "circles", "spirals", "xor", "blobs"] as const;
/** One of {@link SYNTHETIC_NAMES}. */
export type SyntheticName = (typeof SYNTHETIC_NAMES)[number];

/** Examples per split of a synthetic data set unless `size` says otherwise. */
export const DEFAULT_SIZE = 1000;
/** Default noise level of each synthetic data set. */
export const DEFAULT_NOISE: Record<SyntheticName, number> = {
  sine: 0.1,
  moons: 0.1,
  circles: 0.05,
  spirals: 0.1,
  xor: 0.05,
  blobs: 0.25,
};
/** Classes of spirals and blobs when not given (the others have 2). */
export const DEFAULT_SPIRAL_CLASSES = 3;
/** Data sets whose number of classes is an option. */
export const MULTICLASS_NAMES: readonly SyntheticName[] = ["spirals", "blobs"];
/** XOR points keep this distance from the axes (before noise), so that the quadrants are separable. */
const XOR_MARGIN = 0.1;
/** How far each spiral arm turns from the centre to radius 1, in radians. */
const SPIRAL_TURN = 3 * Math.PI;

/** How a synthetic data set is generated: split and seed decide the examples; size, noise and classes override the defaults. */
export interface SyntheticOptions {
  split: Split;
  seed: number;
  size?: number;
  noise?: number;
  classes?: number;
}

// Distinct salts give the two splits independent samples, and keep both streams apart from
// Rng(seed) itself, which model initialization uses with the same --seed.
const SPLIT_SALT: Record<Split, number> = { train: 0xda7a, test: 0x5eed };

export function splitRng(seed: number, split: Split): Rng {
  return new Rng((seed ^ SPLIT_SALT[split]) >>> 0);
}

/** Generate a synthetic data set; options are assumed validated (see registry.ts). */
export function makeSynthetic(name: SyntheticName, opts: SyntheticOptions): Dataset {
  const rng = splitRng(opts.seed, opts.split);
  const n = opts.size ?? DEFAULT_SIZE;
  const noise = opts.noise ?? DEFAULT_NOISE[name];
  switch (name) {
    case "sine":
      return makeSine(n, noise, rng);
    case "moons":
      return makeClasses("moons", n, 2, noise, rng, moonPoint);
    case "circles":
      return makeClasses("circles", n, 2, noise, rng, circlePoint);
    case "spirals": {
      const k = opts.classes ?? DEFAULT_SPIRAL_CLASSES;
      return makeClasses("spirals", n, k, noise, rng, (c, r) => spiralPoint(c, k, r));
    }
    case "xor":
      return makeClasses("xor", n, 2, noise, rng, xorPoint);
    case "blobs": {
      const k = opts.classes ?? DEFAULT_SPIRAL_CLASSES;
      return makeClasses("blobs", n, k, noise, rng, (c) => blobCentre(c, k));
    }
  }
}

function makeSine(n: number, noise: number, rng: Rng): Dataset {
  const x = new Float32Array(n);
  const targets = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = rng.uniformIn(-Math.PI, Math.PI);
    // from the stored float32 x, so that with noise 0 the target is exactly sin(x)
    targets[i] = Math.sin(x[i]) + noise * rng.normal();
  }
  return { name: "sine", task: "regression", inputShape: [1], numOutputs: 1, n, x, targets };
}

/** Noise-free point of class `c`, drawn with `rng`. */
type PointFn = (c: number, rng: Rng) => [number, number];

/** sklearn make_moons arcs (outer = class 0, inner = class 1), with the arc position drawn uniformly. */
export function moonPoint(c: number, rng: Rng): [number, number] {
  const t = rng.uniformIn(0, Math.PI);
  return c === 0 ? [Math.cos(t), Math.sin(t)] : [1 - Math.cos(t), 0.5 - Math.sin(t)];
}

/** Outer circle of radius 1 = class 0, inner circle of radius 0.5 = class 1 (sklearn make_circles, factor 0.5). */
export function circlePoint(c: number, rng: Rng): [number, number] {
  const t = rng.uniformIn(0, 2 * Math.PI);
  const r = c === 0 ? 1 : 0.5;
  return [r * Math.cos(t), r * Math.sin(t)];
}

/** Arm `c` of `k` interleaved spirals: radius s in [0,1), angle offset by a 1/k turn per class. */
export function spiralPoint(c: number, k: number, rng: Rng): [number, number] {
  const s = rng.uniform();
  const angle = (2 * Math.PI * c) / k + SPIRAL_TURN * s;
  return [s * Math.cos(angle), s * Math.sin(angle)];
}

/**
 * XOR: a point uniform in [−1, 1]² away from the axes (|coordinate| ≥ XOR_MARGIN); class 0 in the quadrants where
 * the coordinates have the same sign (x·y > 0), class 1 where they differ.
 */
export function xorPoint(c: number, rng: Rng): [number, number] {
  const sx = rng.uniform() < 0.5 ? 1 : -1;
  const sy = c === 0 ? sx : -sx;
  const a = XOR_MARGIN + (1 - XOR_MARGIN) * rng.uniform();
  const b = XOR_MARGIN + (1 - XOR_MARGIN) * rng.uniform();
  return [sx * a, sy * b];
}

/** Centre of Gaussian blob `c` of `k`: evenly spaced on the unit circle (the noise is the blobs' standard deviation). */
export function blobCentre(c: number, k: number): [number, number] {
  const angle = (2 * Math.PI * c) / k;
  return [Math.cos(angle), Math.sin(angle)];
}

function makeClasses(name: string, n: number, k: number, noise: number, rng: Rng, point: PointFn): Dataset {
  // Balanced: class counts differ by at most one; the shuffle mixes classes in example order, so `limit` keeps balance roughly.
  const order = rng.permutation(n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[order[i]] = i % k;
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const [a, b] = point(labels[i], rng);
    x[2 * i] = a + noise * rng.normal();
    x[2 * i + 1] = b + noise * rng.normal();
  }
  return { name, task: "classification", inputShape: [2], numOutputs: k, n, x, labels };
}
