/** bench/results-gpu.md's text, written by `npm run bench:gpu` (bench/gpu.ts) after its timings. */
import type { AdapterDescription } from "../src/engine/backends/webgpu/index.js";

/**
 * The results file: the adapter and PyTorch's device, the date, one row per task (webgpu ms, torch ms, ratio) and the
 * worst ratio. `torch` is bench/torch_gpu.py's JSON (`_device`, `_torch` and task → ms), null when it did not run.
 */
export function resultsMarkdown(
  a: AdapterDescription,
  ours: Record<string, number>,
  torch: Record<string, number | string> | null,
  reps: number,
  date: Date,
): string {
  const device = [a.vendor, a.architecture, a.description].filter((s) => s && s !== "unknown").join(" ") || "unknown";
  const lines = [
    "# bench:gpu — WebGPU backend vs PyTorch CUDA",
    "",
    `Written by \`npm run bench:gpu\` on ${date.toISOString()}. WebGPU adapter: ${device}` +
      `${a.software ? " (software)" : ""}; PyTorch: ${torch ? `${String(torch._torch)} on ${String(torch._device)}` : "not run"}.`,
    `Batch 128; medians of ${reps} runs (penalty steps ${Math.max(5, reps >> 1)}, exact GC over 10k inputs ` +
      `${Math.min(reps, 3)}); float32, TF32 off. ResNet-18 is the CIFAR variant (\`resnet:18\`); the 10k inputs are ` +
      "synthetic (uniform [0, 1) from a seed, in the model's input shape), resident on the device, GC'd in chunks of 128.",
    "",
    "| task | webgpu ms | torch CUDA ms | ratio webgpu/torch |",
    "|---|---|---|---|",
  ];
  let worst: [string, number] | null = null;
  for (const [k, v] of Object.entries(ours)) {
    const t = torch?.[k];
    const ratio = typeof t === "number" ? v / t : null;
    if (ratio !== null && (!worst || ratio > worst[1])) worst = [k, ratio];
    lines.push(
      `| ${k} | ${v.toFixed(3)} | ${typeof t === "number" ? t.toFixed(3) : "–"} | ${ratio?.toFixed(2) ?? "–"} |`,
    );
  }
  lines.push(
    "",
    worst ? `Worst ratio: ${worst[1].toFixed(2)}× (${worst[0]}).` : "Worst ratio: – (PyTorch CUDA not run).",
  );
  return `${lines.join("\n")}\n`;
}
