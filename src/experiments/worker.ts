/** Worker thread: runs the trials the sweep runner sends, one at a time, and posts back outcomes or errors. */
import { parentPort } from "node:worker_threads";
import { runTrial, runTrialAsync, type TrialOutcome } from "./runTrial.js";
import { onDevice } from "../measures/readback.js";
import type { TrialPlan } from "./trials.js";

interface Message {
  plan: TrialPlan;
  runDir: string;
}

function post(id: string, outcome: TrialOutcome): void {
  parentPort!.postMessage({ id, ok: true, outcome });
}

function fail(id: string, e: unknown): void {
  parentPort!.postMessage({ id, ok: false, error: (e as Error).message });
}

/** Device trials await their read points; they are chained so that they still run one at a time. */
let deviceQueue: Promise<void> = Promise.resolve();

parentPort!.on("message", (msg: Message) => {
  if (onDevice()) {
    deviceQueue = deviceQueue.then(() =>
      runTrialAsync(msg.plan, msg.runDir).then(
        (outcome) => post(msg.plan.id, outcome),
        (e: unknown) => fail(msg.plan.id, e),
      ),
    );
    return;
  }
  try {
    post(msg.plan.id, runTrial(msg.plan, msg.runDir));
  } catch (e) {
    fail(msg.plan.id, e);
  }
});
