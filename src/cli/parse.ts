/** Option value parsers for the CLI: each rejects bad input with a message commander prints on one line. */
import { InvalidArgumentError } from "commander";

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError("must be a positive integer.");
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError("must be a non-negative integer.");
  return n;
}

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("must be a finite number.");
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = finiteNumber(value);
  if (n < 0) throw new InvalidArgumentError("must be ≥ 0.");
  return n;
}
