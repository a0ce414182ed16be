/** `gcx runs status`: how far a sweep has got, on either store (queued, running with worker and heartbeat, ETA). */
import type { Store } from "../../store/store.js";
import { sanitizeLine } from "../errorBoundary.js";

/** "42 s", "3.5 min", "2.1 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "unknown";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/**
 * The status text: counts per status, a table of running trials (worker host:pid, heartbeat age or, for SQLite,
 * time since it started), and an ETA = remaining trials × mean seconds of a finished trial ÷ trials running at once.
 */
export async function formatStatus(store: Store, family?: string): Promise<string> {
  const rows = await store.list({ family });
  const n = { pending: 0, running: 0, done: 0, failed: 0 };
  for (const r of rows) n[r.status]++;
  const lines = [
    `store: ${store.shown}`,
    `queued ${n.pending}  running ${n.running}  done ${n.done}  failed ${n.failed}  (${rows.length} trial${rows.length === 1 ? "" : "s"}${family ? ` of ${family}` : ""})`,
  ];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const running = (await store.running()).filter((r) => byId.has(r.id));
  if (running.length) {
    const nowMs = Date.now();
    const table = running.map((r) => {
      const t = byId.get(r.id)!;
      const age =
        r.heartbeatAgeSeconds !== null
          ? `heartbeat ${formatDuration(r.heartbeatAgeSeconds)} ago`
          : r.startedAt
            ? `started ${formatDuration((nowMs - Date.parse(r.startedAt)) / 1000)} ago`
            : "-";
      return [t.id, `${t.family} ${t.knob}=${t.knobValue} seed ${t.seed}`, r.worker ?? "-", age];
    });
    const w = [0, 1, 2].map((j) => Math.max(...table.map((row) => row[j].length)));
    lines.push("running:", ...table.map((row) => "  " + row.map((c, j) => (j < 3 ? c.padEnd(w[j]) : c)).join("  ")));
  }
  const seconds = rows.filter((r) => r.status === "done" && r.seconds !== null).map((r) => r.seconds!);
  const remaining = n.pending + n.running;
  if (remaining === 0) lines.push(rows.length ? "nothing left to run" : "no trials yet");
  else if (seconds.length === 0) lines.push(`ETA: unknown until a trial finishes (${remaining} to go)`);
  else {
    const mean = seconds.reduce((a, b) => a + b, 0) / seconds.length;
    const parallel = Math.max(1, n.running);
    lines.push(
      `ETA: ${formatDuration((remaining * mean) / parallel)} (${remaining} to go × mean ${formatDuration(mean)} per trial ÷ ${parallel} running at once)`,
    );
  }
  if (n.failed) lines.push(`failed trials: gcx runs list --status failed (the store's error says why)`);
  return lines.map((l) => sanitizeLine(l)).join("\n") + "\n";
}
