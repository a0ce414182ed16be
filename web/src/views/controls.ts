/**
 * The control panel, generated from the field list in state.ts: selects for choices and preset values, sliders
 * for ranges, a number box for the seed. Every control carries data-testid="control-<url name>".
 */
import { FIELDS, type Field, type State } from "../state.js";

type Input = HTMLSelectElement | HTMLInputElement;

function presetLabel(v: number): string {
  return v === 0 ? "0 (off)" : String(v);
}

export class Controls {
  private readonly inputs = new Map<keyof State, { input: Input; field: Field; out?: HTMLOutputElement }>();
  private state: State;

  constructor(root: HTMLElement, initial: State, private readonly onChange: (next: State) => void) {
    this.state = initial;
    const groups = new Map<string, HTMLFieldSetElement>();
    for (const f of FIELDS) {
      let set = groups.get(f.group);
      if (!set) {
        set = document.createElement("fieldset");
        set.append(Object.assign(document.createElement("legend"), { textContent: f.group }));
        groups.set(f.group, set);
        root.append(set);
      }
      const label = document.createElement("label");
      label.className = "control";
      if (f.help) label.title = f.help;
      const name = Object.assign(document.createElement("span"), { className: "name", textContent: f.label });
      const { input, out } = this.makeInput(f);
      input.dataset.testid = `control-${f.param}`;
      input.name = f.param;
      input.addEventListener(input instanceof HTMLSelectElement ? "change" : "input", () => this.read(f));
      label.append(name, input);
      if (out) label.append(out);
      set.append(label);
      this.inputs.set(f.key, { input, field: f, out });
    }
    this.show(initial);
  }

  private makeInput(f: Field): { input: Input; out?: HTMLOutputElement } {
    if (f.kind === "enum" || f.presets) {
      const select = document.createElement("select");
      const values = f.kind === "enum" ? f.values : f.presets!.map(String);
      for (const v of values) select.add(new Option(f.kind === "enum" ? v : presetLabel(Number(v)), v));
      return { input: select };
    }
    const input = document.createElement("input");
    if (f.step === undefined) {
      input.type = "number";
      input.min = String(f.min);
      input.max = String(f.max);
      return { input };
    }
    input.type = "range";
    input.min = String(f.min);
    input.max = String(f.max);
    input.step = String(f.step);
    return { input, out: document.createElement("output") };
  }

  private read(f: Field): void {
    const { input } = this.inputs.get(f.key)!;
    let value: string | number = input.value;
    if (f.kind === "number") {
      value = Number(input.value);
      if (!Number.isFinite(value) || value < f.min || value > f.max || (f.integer && !Number.isInteger(value))) return;
    }
    const next = { ...this.state, [f.key]: value };
    this.show(next);
    this.onChange(next);
  }

  /** Shows a state in the controls (values not among a select's presets are added as options). */
  show(s: State): void {
    this.state = s;
    for (const { input, field, out } of this.inputs.values()) {
      const v = String(s[field.key]);
      if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === v)) {
        input.add(new Option(field.kind === "number" ? presetLabel(Number(v)) : v, v));
      }
      if (input.value !== v) input.value = v;
      if (out) out.textContent = v;
    }
    this.inputs.get("classes")!.input.disabled = s.data !== "spirals";
    this.inputs.get("width")!.input.disabled = s.depth === 0;
    this.inputs.get("gcProbes")!.input.disabled = s.gc === 0;
  }
}
