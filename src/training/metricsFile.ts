/**
 * metrics.jsonl: one JSON object per logged step. Readers tolerate a torn last line (a write cut short by a full
 * disk or a kill) and name the file and line of any other damage.
 */
import { UserError } from "../util/errors.js";
import { readTextBounded, writeFileAtomic } from "../util/files.js";
import type { MetricsRecord } from "./evaluate.js";

/** Metrics files can be long (a record per log step); 1 GiB is far beyond any real run. */
const MAX_METRICS_BYTES = 1 << 30;

/** The records of a metrics file and whether a torn last line was dropped. */
export interface ReadMetricsResult {
  records: MetricsRecord[];
  /** Whether a torn last line was dropped. */
  tornTail: boolean;
}

export function parseMetrics(text: string, file: string): ReadMetricsResult {
  const lines = text.split("\n");
  // Without a final newline the last line was cut short (or is empty); with one, the last element is "".
  const tail = lines.pop() ?? "";
  const records: MetricsRecord[] = [];
  let torn = tail.trim() !== "";
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      // A torn line followed only by blank lines is still the torn tail.
      if (lines.slice(i + 1).every((l) => l.trim() === "") && tail.trim() === "") {
        torn = true;
        return;
      }
      throw new UserError(`${file}: line ${i + 1} is not valid JSON (the file is damaged)`);
    }
    if (
      typeof v !== "object" ||
      v === null ||
      Array.isArray(v) ||
      !Number.isSafeInteger((v as MetricsRecord).step) ||
      ((v as MetricsRecord).step as number) < 0
    ) {
      throw new UserError(`${file}: line ${i + 1} is not a metrics record (an object with an integer "step")`);
    }
    records.push(v as MetricsRecord);
  });
  for (let i = 1; i < records.length; i++) {
    if ((records[i].step as number) <= (records[i - 1].step as number))
      throw new UserError(`${file}: steps are not increasing (step ${records[i].step} after ${records[i - 1].step})`);
  }
  return { records, tornTail: torn };
}

/** Reads a run's `metrics.jsonl`; a torn last line is dropped, any other damage is a UserError naming the line. */
export function readMetrics(file: string): ReadMetricsResult {
  return parseMetrics(readTextBounded(file, MAX_METRICS_BYTES, "metrics file"), file);
}

export function writeMetrics(file: string, records: MetricsRecord[]): void {
  writeFileAtomic(file, records.map((r) => JSON.stringify(r) + "\n").join(""));
}
