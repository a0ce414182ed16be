/**
 * The control panel, generated from the field list in state.ts: selects for choices and preset values, sliders
 * for ranges, number and text boxes. Every control carries data-testid="control-<url name>" and a visible line of
 * help (aria-describedby); a value that is not valid stays in its box, marked invalid, with the reason shown,
 * while the state (and the URL) keeps the last valid value.
 */
import { DATA_DEFAULTS, FIELDS, type Field, type State } from "../state.js";

type Input = HTMLSelectElement | HTMLInputElement;

function presetLabel(v: number): string {
  return v === 0 ? "0 (off)" : String(v);
}

function rangeText(f: Field): string {
  if (f.kind !== "number") return "";
  return `${f.integer ? "an integer" : "a number"} from ${f.min} to ${f.max}`;
}

export class Controls {
  private readonly inputs = new Map<
    keyof State,
    { input: Input; field: Field; out?: HTMLOutputElement; help: HTMLElement }
  >();
  private state: State;

  constructor(
    root: HTMLElement,
    initial: State,
    private readonly onChange: (next: State) => void,
  ) {
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
      const name = Object.assign(document.createElement("span"), { className: "name", textContent: f.label });
      const { input, out } = this.makeInput(f);
      input.dataset.testid = `control-${f.param}`;
      input.name = f.param;
      input.id = `control-${f.param}`;
      const help = Object.assign(document.createElement("small"), {
        className: "help",
        id: `help-${f.param}`,
        textContent: f.help,
      });
      input.setAttribute("aria-describedby", help.id);
      input.addEventListener(input instanceof HTMLSelectElement || f.kind === "text" ? "change" : "input", () =>
        this.read(f),
      );
      label.append(name, input);
      if (out) label.append(out);
      set.append(label, help);
      this.inputs.set(f.key, { input, field: f, out, help });
    }
    this.show(initial);
  }

  private makeInput(f: Field): { input: Input; out?: HTMLOutputElement } {
    if (f.kind === "enum" || (f.kind === "number" && f.presets)) {
      const select = document.createElement("select");
      const values = f.kind === "enum" ? f.values : f.presets!.map(String);
      for (const v of values) select.add(new Option(f.kind === "enum" ? v : presetLabel(Number(v)), v));
      return { input: select };
    }
    const input = document.createElement("input");
    if (f.kind === "text") {
      input.type = "text";
      input.placeholder = "off";
      input.autocomplete = "off";
      return { input };
    }
    if (f.step === undefined) {
      input.type = "number";
      input.min = String(f.min);
      input.max = String(f.max);
      input.inputMode = "numeric";
      return { input };
    }
    input.type = "range";
    input.min = String(f.min);
    input.max = String(f.max);
    input.step = String(f.step);
    return { input, out: document.createElement("output") };
  }

  private invalid(f: Field, reason: string | null): void {
    const { input, help } = this.inputs.get(f.key)!;
    input.setAttribute("aria-invalid", String(reason !== null));
    help.classList.toggle("error", reason !== null);
    help.textContent = reason ?? f.help;
  }

  private read(f: Field): void {
    const { input } = this.inputs.get(f.key)!;
    let value: string | number = input.value.trim();
    if (f.kind === "number") {
      value = Number(input.value);
      if (
        input.value.trim() === "" ||
        !Number.isFinite(value) ||
        value < f.min ||
        value > f.max ||
        (f.integer && !Number.isInteger(value))
      ) {
        this.invalid(
          f,
          `Not applied: ${f.label.toLowerCase()} must be ${rangeText(f)}; still ${String(this.state[f.key])}.`,
        );
        return;
      }
    } else if (f.kind === "text" && !f.pattern.test(value)) {
      this.invalid(f, `Not applied: ${f.help}; still "${String(this.state[f.key]) || "off"}".`);
      return;
    }
    this.invalid(f, null);
    let next = { ...this.state, [f.key]: value };
    // A new data set comes with settings that make it learn (noise, optimizer, learning rate; a bigger net for spirals).
    if (f.key === "data") next = { ...next, ...DATA_DEFAULTS[next.data] };
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
      if (input.value !== v && input.getAttribute("aria-invalid") !== "true") input.value = v;
      if (out) out.textContent = v;
    }
    const multi = s.data === "spirals" || s.data === "blobs";
    this.inputs.get("classes")!.input.disabled = !multi;
    this.inputs.get("width")!.input.disabled = s.depth === 0 || s.hidden !== "";
    this.inputs.get("depth")!.input.disabled = s.hidden !== "";
    this.inputs.get("gcProbes")!.input.disabled = s.gc === 0;
  }
}
