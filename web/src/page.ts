/**
 * The page's state beyond one run's settings: the runs compared beside the base run, and the tour stop shown.
 * In the URL: `compare=l2:0.01|gc:0.1` (runs separated by "|", each a comma-separated list of field:value with the
 * fields' URL names) and `tour=T1`; the base run is the rest of the hash (state.ts). Each run starts from the same
 * seed and data unless its overrides change them.
 */
import { FIELDS, parseField, parseState, paramsOf, serializeState, type State } from "./state.js";

/** At most this many runs side by side (the base run included). */
export const MAX_RUNS = 4;

export interface PageState {
  state: State;
  /** Overrides of the base state, one per compared run (empty: a single run). */
  compare: Partial<State>[];
  tour: string | null;
}

/** One run's overrides ("l2:0.01,gc:0.1") and what in them is not valid. */
function parseRun(part: string): { over: Partial<State>; problems: string[] } {
  const over: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const pair of part.split(",")) {
    const [param, value] = pair.split(":");
    const f = FIELDS.find((g) => g.param === param?.trim());
    const v = f && value !== undefined ? parseField(f, value.trim()) : undefined;
    if (!f) problems.push(`unknown field "${param?.trim() ?? ""}"`);
    else if (v === undefined) problems.push(`bad value for ${f.param}: "${value ?? ""}"`);
    else over[f.key] = v;
  }
  return { over, problems };
}

/** Runs of a compare string; invalid entries are dropped (and reported by `compareProblems`). */
export function parseCompare(raw: string | null): Partial<State>[] {
  if (!raw) return [];
  return raw
    .split("|")
    .map((part) => parseRun(part).over)
    .filter((over) => Object.keys(over).length > 0)
    .slice(0, MAX_RUNS - 1);
}

/** What is wrong with a compare string (empty when every entry is valid). */
export function compareProblems(raw: string): string[] {
  if (!raw.trim()) return [];
  const parts = raw.split("|");
  const problems = parts.flatMap((part) => parseRun(part).problems);
  if (parts.length > MAX_RUNS - 1) problems.push(`at most ${MAX_RUNS - 1} runs beside the base run`);
  return problems;
}

export function serializeCompare(runs: Partial<State>[]): string {
  return runs
    .map((over) =>
      Object.entries(over)
        .map(([k, v]) => `${FIELDS.find((f) => f.key === k)!.param}:${String(v)}`)
        .join(","),
    )
    .join("|");
}

export function parsePage(hash: string): PageState {
  const p = paramsOf(hash);
  return { state: parseState(hash), compare: parseCompare(p.get("compare")), tour: p.get("tour") };
}

export function serializePage(page: PageState): string {
  let hash = serializeState(page.state);
  if (page.compare.length) hash += `&compare=${encodeURIComponent(serializeCompare(page.compare))}`;
  if (page.tour) hash += `&tour=${encodeURIComponent(page.tour)}`;
  return hash;
}

/** The state of every run: the base, then the base with each run's overrides. */
export function runStates(page: PageState): State[] {
  return [page.state, ...page.compare.map((over) => ({ ...page.state, ...over }))];
}

/** A short name per run: the values of the fields that the compared runs change ("l2 0", "l2 0.01"). */
export function runLabels(page: PageState): string[] {
  if (!page.compare.length) return [""];
  const keys = [...new Set(page.compare.flatMap((o) => Object.keys(o)))] as (keyof State)[];
  const name = (k: keyof State) => FIELDS.find((f) => f.key === k)!.param;
  return runStates(page).map((s) => keys.map((k) => `${name(k)} ${String(s[k])}`).join(", "));
}

/** Writes the page state into the address bar without adding a history entry (extra: e.g. engine=js). */
export function writePage(page: PageState, extra?: URLSearchParams): void {
  let hash = serializePage(page);
  if (extra && [...extra.keys()].length) hash += "&" + extra.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}#${hash}`);
}
