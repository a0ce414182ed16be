/**
 * Reverse-mode differentiation over recorded graphs. Backward rules are written with the same differentiable
 * ops, so with `createGraph` the gradients are themselves differentiable (double backprop: gradient penalties,
 * Hessian-vector products, GC regularization).
 */
import { Tensor } from "./tensor.js";
import { noGrad, withGrad } from "./graph.js";
import { add, onesLike, zerosLike } from "./ops.js";

/** Options of {@link grad}. */
export interface GradOptions {
  /** Record the backward pass so its results can be differentiated again. Default false. */
  createGraph?: boolean;
  /** Cotangent for `output`; defaults to ones (so a scalar output gives its plain gradient). */
  cotangent?: Tensor;
}

/** Gradients of `output` (weighted by the cotangent) with respect to each of `inputs`; zeros where unreachable. */
export function grad(output: Tensor, inputs: readonly Tensor[], opts: GradOptions = {}): Tensor[] {
  const run = () => backprop(output, inputs, opts.cotangent);
  return opts.createGraph ? withGrad(run) : noGrad(run);
}

function backprop(output: Tensor, inputs: readonly Tensor[], cotangent?: Tensor): Tensor[] {
  const seed = cotangent ?? onesLike(output);
  if (seed.size !== output.size) {
    throw new RangeError(`cotangent has ${seed.size} values, output has ${output.size}`);
  }
  const order = topologicalOrder(output);
  const grads = new Map<Tensor, Tensor>();
  grads.set(output, seed);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g || !t.node) continue;
    const inputGrads = t.node.backward(g);
    t.node.inputs.forEach((inp, j) => {
      const gi = inputGrads[j];
      if (!gi || !inp.requiresGrad) return;
      const prev = grads.get(inp);
      grads.set(inp, prev ? add(prev, gi) : gi);
    });
    // Intermediate cotangents are not needed again: drop them so their memory can be reclaimed early.
    if (!inputs.includes(t)) grads.delete(t);
  }
  return inputs.map((x) => grads.get(x) ?? zerosLike(x));
}

/** Tensors reachable from `root` through recorded ops, each after all of its inputs. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep graphs (long training unrolls, many layers) must not overflow the JS stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const ins = t.node?.inputs ?? [];
    if (next < ins.length) {
      top[1]++;
      const child = ins[next];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/** Value and gradient of a scalar function of several tensors. */
export function valueAndGrad(
  f: (...xs: Tensor[]) => Tensor,
  xs: readonly Tensor[],
  opts: { createGraph?: boolean } = {},
): { value: Tensor; grads: Tensor[] } {
  const vars = xs.map((x) => x.variable());
  const value = withGrad(() => f(...vars));
  const grads = grad(value, vars, opts);
  return { value: opts.createGraph ? value : value.detach(), grads };
}
