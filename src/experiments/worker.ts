/** Worker thread: runs the trials the sweep runner sends, one at a time, and posts back outcomes or errors. */
import { parentPort } from "node:worker_threads";
import { runTrial } from "./runTrial.js";
import type { TrialPlan } from "./trials.js";

parentPort!.on("message", (msg: { plan: TrialPlan; runDir: string }) => {
  try {
    parentPort!.postMessage({ id: msg.plan.id, ok: true, outcome: runTrial(msg.plan, msg.runDir) });
  } catch (e) {
    parentPort!.postMessage({ id: msg.plan.id, ok: false, error: (e as Error).message });
  }
});
