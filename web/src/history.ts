/** The measurements of a session over its steps, thinned to a bounded number of points for the charts. */
import type { Metrics } from "./session.js";

export class History {
  private points: Metrics[] = [];

  constructor(private readonly maxPoints = 600) {}

  get all(): readonly Metrics[] {
    return this.points;
  }

  get last(): Metrics | undefined {
    return this.points[this.points.length - 1];
  }

  clear(): void {
    this.points = [];
  }

  add(m: Metrics): void {
    if (this.last && this.last.step === m.step) this.points[this.points.length - 1] = m;
    else this.points.push(m);
    // Keep every other point (and always the newest) once the list is full: older history becomes coarser.
    if (this.points.length > this.maxPoints)
      this.points = this.points.filter((_, i, a) => i % 2 === 0 || i === a.length - 1);
  }

  series(pick: (m: Metrics) => number | null): { x: number[]; y: (number | null)[] } {
    return { x: this.points.map((m) => m.step), y: this.points.map(pick) };
  }
}
