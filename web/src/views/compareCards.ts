/**
 * Compare mode's side-by-side runs: one card per run with its learned function, its ‖∂g/∂x‖² heatmap (every card
 * on the same colour scale) and its numbers. Cards carry data-testid="run-<i>"; numbers "run-<i>-gc" etc. with the
 * unrounded value in data-value.
 */
import type { RunClient } from "../runClient.js";
import type { ScaleName } from "../state.js";
import { formatNumber } from "./canvas.js";
import { RUN_COLORS } from "./colors.js";
import { FunctionView } from "./functionView.js";
import { GradientView } from "./gradientView.js";

const SIZE = 210;

interface Card {
  root: HTMLElement;
  title: HTMLElement;
  fn: FunctionView;
  grad: GradientView;
  cells: Map<string, HTMLElement>;
}

const NUMBERS: [string, string][] = [
  ["step", "step"],
  ["gc", "GC (train)"],
  ["test-acc", "test accuracy"],
  ["test-loss", "test loss"],
  ["ratio", "GC / T1 bound"],
];

export class CompareCards {
  private cards: Card[] = [];

  constructor(private readonly root: HTMLElement) {}

  private make(i: number): Card {
    const root = document.createElement("figure");
    root.className = "card";
    root.dataset.testid = `run-${i}`;
    const title = document.createElement("figcaption");
    const canvases = document.createElement("div");
    canvases.className = "card-canvases";
    const c1 = document.createElement("canvas");
    const c2 = document.createElement("canvas");
    c1.setAttribute("role", "img");
    c2.setAttribute("role", "img");
    c1.dataset.testid = `run-${i}-function`;
    c2.dataset.testid = `run-${i}-gradient`;
    canvases.append(c1, c2);
    const table = document.createElement("table");
    table.className = "metrics compact";
    const cells = new Map<string, HTMLElement>();
    for (const [id, label] of NUMBERS) {
      const tr = table.insertRow();
      const th = Object.assign(document.createElement("th"), { textContent: label });
      const td = tr.insertCell();
      tr.prepend(th);
      td.dataset.testid = `run-${i}-${id}`;
      cells.set(id, td);
    }
    root.append(title, canvases, table);
    this.root.append(root);
    return { root, title, fn: new FunctionView(c1, SIZE), grad: new GradientView(c2, null, SIZE), cells };
  }

  draw(runs: RunClient[], labels: string[], scale: ScaleName): void {
    while (this.cards.length < runs.length) this.cards.push(this.make(this.cards.length));
    while (this.cards.length > runs.length) this.cards.pop()!.root.remove();
    runs.forEach((r, i) => {
      const c = this.cards[i];
      c.title.innerHTML = "";
      const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
      swatch.style.background = RUN_COLORS[i % RUN_COLORS.length];
      c.title.append(swatch, `Run ${String.fromCharCode(65 + i)}: ${labels[i]}`);
      const [fnCanvas, gradCanvas] = c.root.querySelectorAll("canvas");
      fnCanvas.setAttribute(
        "aria-label",
        `Run ${String.fromCharCode(65 + i)} (${labels[i]}): learned function over the input space`,
      );
      gradCanvas.setAttribute(
        "aria-label",
        `Run ${String.fromCharCode(65 + i)} (${labels[i]}): ‖∂g/∂x‖² heatmap on the shared colour scale`,
      );
      if (r.domain && r.grid && r.values && r.train && r.test) {
        c.fn.draw(r.domain, r.grid, r.values, r.train, r.test);
        c.grad.draw(r.domain, r.grid, r.values, r.train, r.test, scale);
      }
      const m = r.last;
      const set = (id: string, v: number | null | undefined, text = formatNumber(v)) => {
        const td = c.cells.get(id)!;
        td.textContent = text;
        td.dataset.value = v === null || v === undefined ? "" : String(v);
      };
      set("step", m?.step, m ? String(m.step) : "–");
      set("gc", m?.gcTrain, m ? (m.gcSample !== null ? "≈ " : "") + formatNumber(m.gcTrain) : "–");
      set("test-acc", m?.testAcc, m?.testAcc == null ? "–" : `${(100 * m.testAcc).toFixed(1)} %`);
      set("test-loss", m?.testLoss);
      set("ratio", m ? m.gcTrain / m.t1 : null);
    });
  }
}
