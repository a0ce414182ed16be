/**
 * The current numbers: step, losses, accuracies, GC and its bounds, frames per second. Each value is an element
 * with a data-testid and the unrounded number in data-value (what the end-to-end test reads).
 */
import { formatNumber } from "./canvas.js";
import type { Metrics } from "../session.js";

interface Row {
  id: string;
  /** HTML (sub/superscripts). */
  label: string;
  title?: string;
}

const ROWS: Row[] = [
  { id: "step", label: "step" },
  { id: "train-loss", label: "train loss" },
  { id: "test-loss", label: "test loss" },
  { id: "train-acc", label: "train accuracy" },
  { id: "test-acc", label: "test accuracy" },
  { id: "gc", label: "<b>GC</b> (train)", title: "mean ‖∂g(x)/∂x‖_F² over the training set, exact" },
  { id: "gc-test", label: "GC (test)", title: "the same mean over the test set" },
  {
    id: "t1",
    label: "T1 bound ∏<sub>l</sub>‖W<sub>l</sub>‖<sub>F</sub>²",
    title: "T1: GC ≤ ∏_l ‖W_l‖_F² for 1-Lipschitz activations (relu, tanh, sigmoid; not gelu)",
  },
  {
    id: "t2",
    label: "T2 bound min(d,k)·∏<sub>l</sub>‖W<sub>l</sub>‖<sub>op</sub>²",
    title: "T2: GC ≤ min(d,k)·∏_l ‖W_l‖_op² (Lipschitz bound; not for gelu)",
  },
  { id: "penalty", label: "penalty (batch mean)" },
  { id: "fps", label: "frames per second" },
];

export class MetricsPanel {
  private readonly cells = new Map<string, HTMLElement>();

  private readonly note: HTMLElement;

  constructor(root: HTMLElement) {
    const meaning = document.createElement("p");
    meaning.className = "meaning";
    meaning.dataset.testid = "gc-meaning";
    meaning.innerHTML =
      "<b>GC</b> = the mean of ‖∂g/∂x‖² over the data: how steeply the network's outputs change with its input. " +
      "0 for a constant function, ‖A‖² for a linear map x ↦ Ax; lower means a simpler, flatter function. " +
      "<b>T1–T7, X</b> tag the paper's claims about what lowers it (see the tour).";
    const table = document.createElement("table");
    table.className = "metrics";
    for (const r of ROWS) {
      const tr = table.insertRow();
      const th = document.createElement("th");
      th.innerHTML = r.label; // fixed markup from ROWS
      if (r.title) th.title = r.title;
      const td = tr.insertCell();
      tr.prepend(th);
      td.dataset.testid = r.id;
      this.cells.set(r.id, td);
    }
    this.note = document.createElement("p");
    this.note.className = "sample-note";
    this.note.dataset.testid = "gc-note";
    root.append(meaning, table, this.note);
  }

  private set(id: string, v: number | null, text = formatNumber(v)): void {
    const td = this.cells.get(id)!;
    td.textContent = text;
    td.dataset.value = v === null ? "" : String(v);
  }

  /** Shows the latest measurement; `step` is the current step (ahead of m.step between measurements). */
  update(m: Metrics | undefined, step = m?.step ?? 0, activation = "relu"): void {
    if (!m) return;
    this.set("step", step, String(step));
    this.set("train-loss", m.trainLoss);
    this.set("test-loss", m.testLoss);
    this.set("train-acc", m.trainAcc, m.trainAcc === null ? "–" : `${(100 * m.trainAcc).toFixed(1)} %`);
    this.set("test-acc", m.testAcc, m.testAcc === null ? "–" : `${(100 * m.testAcc).toFixed(1)} %`);
    const approx = m.gcSample !== null;
    this.set("gc", m.gcTrain, (approx ? "≈ " : "") + formatNumber(m.gcTrain));
    this.set("gc-test", m.gcTest, (approx ? "≈ " : "") + formatNumber(m.gcTest));
    this.cells.get("gc")!.dataset.exact = String(!approx);
    this.note.textContent = approx
      ? `≈ while playing: losses and GC on the first ${m.gcSample} examples of each split (the network is large); exact over all examples when paused.`
      : "GC: exact, over every example (as gcx measure computes it).";
    // T1 and T2 assume 1-Lipschitz activations; GELU's slope reaches about 1.13.
    if (activation === "gelu")
      this.note.textContent += " With gelu (slope up to 1.13), T1 and T2 are not bounds on GC.";
    this.set("t1", m.t1);
    this.set("t2", m.t2);
    this.set("penalty", m.penalty);
  }

  setFps(fps: number): void {
    this.set("fps", fps, fps > 0 ? fps.toFixed(0) : "–");
  }
}
