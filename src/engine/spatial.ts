/**
 * Spatial ops with PyTorch semantics on NHWC images ([N, H, W, C]; conv weights [out, kh, kw, in/groups]):
 * general convolution (stride, asymmetric padding, dilation, groups), constant padding, max/average pooling with
 * padding, global average pooling, channel concatenation and axis permutation.
 *
 * Like ops.ts, each op computes its result with a plain loop or kernel and records a backward rule made of
 * differentiable ops. Linear ops come in adjoint pairs (im2col/col2im, pad/crop, concat/slice, spread/mean) whose
 * backward rules call each other, so derivatives of every order exist.
 */
import { Tensor, newOutputLike, sizeOf } from "./tensor.js";
import { record } from "./graph.js";
import {
  add,
  gather,
  matmul,
  maxPoolByKernel,
  mulConst,
  poolsByKernel,
  relu,
  reluMaskStorage,
  reshape,
  scatterAdd,
  sumToLastAxis,
} from "./ops.js";
import * as K from "./kernels.js";
import { kernels, onDevice, onHost } from "./backend.js";
import { run } from "./dispatch.js";
import { conv, convFilter, convInput, directConvAvailable } from "./conv.js";
import { emptyPoolWindow } from "./wasmKernels.js";

/** Padding of the two spatial axes: [top, left, bottom, right]. */
export type Pad4 = [number, number, number, number];

export interface Conv2dOptions {
  stride: [number, number];
  padding: Pad4;
  dilation: [number, number];
  groups: number;
}

export interface Pool2dOptions {
  kernel: [number, number];
  stride: [number, number];
  padding: Pad4;
}

function checkImage(x: Tensor, op: string): void {
  if (x.shape.length !== 4)
    throw new RangeError(`${op}: expected an NHWC image tensor [N,H,W,C], got shape [${x.shape.join(",")}]`);
}

function checkPad(padding: readonly number[], op: string): void {
  if (padding.length !== 4 || padding.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new RangeError(
      `${op}: padding must be four non-negative integers [top, left, bottom, right], got [${padding.join(",")}]`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution

/** Patch matrix of x for a general window geometry (one channel group): [n·outH·outW, kh·kw·cg]. */
function im2colG(x: Tensor, geom: K.ConvGeometry): Tensor {
  const rows = geom.n * geom.outH * geom.outW;
  const cols = geom.kh * geom.kw * geom.cg;
  const out = newOutputLike(x.storage, rows * cols);
  run("im2col", "im2col", x.storage, out, geom);
  return record(out, [rows, cols], [x], (g) => [col2imG(g, geom, x.shape)]);
}

/** Adjoint of im2colG. */
function col2imG(cols: Tensor, geom: K.ConvGeometry, shape: readonly number[]): Tensor {
  const out = newOutputLike(cols.storage, sizeOf(shape));
  run("col2im", "col2im", cols.storage, out, geom);
  return record(out, shape, [cols], (g) => [im2colG(g, geom)]);
}

/**
 * 2-D convolution as PyTorch's Conv2d (no bias): x [N,H,W,Cin], w [Cout, kh, kw, Cin/groups] → [N,Ho,Wo,Cout] with
 * Ho = floor((H + top + bottom − dh·(kh−1) − 1)/sh) + 1 (likewise Wo). Grouped convolution (depthwise when
 * groups = Cin) uses the block-diagonal [Cout, kh·kw·Cin] weight, so it costs as much as the dense convolution of
 * the same width (cheaper in practice than per-group matmuls plus concatenation, whose adjoints are full-size).
 */
export function conv2dGeneral(x: Tensor, w: Tensor, o: Conv2dOptions): Tensor {
  const geom = convChecked(x, w, o);
  const [cout, kh, kw, cg] = w.shape;
  const cin = x.shape[3];
  const groups = o.groups;
  const og = cout / groups;
  if (directConvAvailable(x, groups)) return conv(x, w, geom);
  const cols = im2colG(x, geom);
  // Grouped: every output filter sees all input channels through a block-diagonal weight (zeros outside its group),
  // so the whole convolution stays one im2col and one matmul.
  const wFull =
    groups === 1
      ? reshape(w, [cout, kh * kw * cin])
      : scatterAdd(w, blockDiagonalIndex(cout, kh * kw, cg, og), [cout, kh * kw * cin]);
  const y = matmul(cols, wFull, false, true);
  return reshape(y, [geom.n, geom.outH, geom.outW, cout]);
}

/**
 * A convolution layer act(conv2d(x, w) + b), b [cout], act relu or none: one kernel on a backend with the fused
 * entry (convBiasAct: the bias and the clamp ride on the implicit GEMM's last block, as `linear` does for dense
 * layers), else conv2dGeneral, add and relu. The same values either way (the bias is added once after the sum, then
 * clamped), and the backward rule is the composite's (a constant ReLU mask, then the input and filter gradients and
 * a per-channel sum), so it is differentiable again exactly as the composite is.
 */
export function conv2dBiasAct(x: Tensor, w: Tensor, b: Tensor, o: Conv2dOptions, act: "relu" | "none"): Tensor {
  const cout = w.shape[0];
  if (b.shape.length !== 1 || b.size !== cout)
    throw new RangeError(`conv2d: bias must be a vector of ${cout} values, got shape [${b.shape.join(",")}]`);
  const geom = convChecked(x, w, o);
  const fused =
    directConvAvailable(x, o.groups) && b.dtype === x.dtype && kernels().convBiasAct !== undefined ? geom : null;
  const out = fused ? newOutputLike(x.storage, geom.n * geom.outH * geom.outW * cout) : null;
  if (!fused || !out || !kernels().convBiasAct!(x.storage, w.storage, b.storage, out, geom, cout, act === "relu")) {
    const z = add(conv2dGeneral(x, w, o), b);
    return act === "relu" ? relu(z) : z;
  }
  const y: Tensor = record(out, [geom.n, geom.outH, geom.outW, cout], [x, w, b], (g) => {
    const gz = act === "relu" ? mulConst(g, reluMaskStorage(y)) : g; // y > 0 exactly where conv + b > 0
    return [
      x.requiresGrad ? convInput(gz, w, geom) : null,
      w.requiresGrad ? convFilter(x, gz, geom, w.shape) : null,
      b.requiresGrad ? sumToLastAxis(gz) : null,
    ];
  });
  return y;
}

/** conv2d's argument checks; the geometry of the convolution. */
function convChecked(x: Tensor, w: Tensor, o: Conv2dOptions): K.ConvGeometry {
  checkImage(x, "conv2d");
  if (w.shape.length !== 4)
    throw new RangeError(`conv2d: weight must be [out, kh, kw, in/groups], got shape [${w.shape.join(",")}]`);
  const [cout, kh, kw, cg] = w.shape;
  const cin = x.shape[3];
  const groups = o.groups;
  if (!Number.isInteger(groups) || groups < 1)
    throw new RangeError(`conv2d: groups must be a positive integer, got ${groups}`);
  if (cin % groups !== 0) throw new RangeError(`conv2d: input channels ${cin} are not divisible by groups ${groups}`);
  if (cout % groups !== 0)
    throw new RangeError(`conv2d: output channels ${cout} are not divisible by groups ${groups}`);
  if (cg !== cin / groups) {
    throw new RangeError(
      `conv2d: weight [${w.shape.join(",")}] expects ${cg} input channels per group, input has ${cin} channels in ${groups} group(s)`,
    );
  }
  if (x.dtype !== w.dtype) throw new RangeError(`conv2d: input is ${x.dtype} but weight is ${w.dtype}`);
  return K.convGeometry(x.shape, [kh, kw], o.stride, o.padding, o.dilation);
}

/** Position in the block-diagonal [cout, k·cin] weight of each entry of a grouped weight [cout, k, cg]. */
function blockDiagonalIndex(cout: number, k: number, cg: number, og: number): Int32Array {
  const cin = cg * (cout / og);
  const idx = new Int32Array(cout * k * cg);
  let p = 0;
  for (let o = 0; o < cout; o++) {
    const c0 = Math.floor(o / og) * cg;
    for (let j = 0; j < k; j++) for (let i = 0; i < cg; i++) idx[p++] = (o * k + j) * cin + c0 + i;
  }
  return idx;
}

// ---------------------------------------------------------------------------------------------------------------
// Padding

/** Constant padding of the H and W axes of x [N,H,W,C]: → [N, H+top+bottom, W+left+right, C]. */
export function pad2d(x: Tensor, padding: Pad4, value = 0): Tensor {
  checkImage(x, "pad2d");
  checkPad(padding, "pad2d");
  const [n, h, w, c] = x.shape;
  const [t, l, b, r] = padding;
  const H = h + t + b,
    W = w + l + r;
  const out = newOutputLike(x.storage, n * H * W * c);
  run("pad2d", "pad2d", x.storage, out, x.shape, padding, value);
  return record(out, [n, H, W, c], [x], (g) => [crop2d(g, padding)]);
}

/** Adjoint of pad2d: removes `padding` from the H and W axes. */
function crop2d(x: Tensor, padding: Pad4): Tensor {
  const [n, H, W, c] = x.shape;
  const [t, l, b, r] = padding;
  const h = H - t - b,
    w = W - l - r;
  const out = newOutputLike(x.storage, n * h * w * c);
  run("crop2d", "crop2d", x.storage, out, x.shape, padding);
  return record(out, [n, h, w, c], [x], (g) => [pad2d(g, padding, 0)]);
}

// ---------------------------------------------------------------------------------------------------------------
// Pooling

/** Max pooling as PyTorch's MaxPool2d (padding counts as −∞, floor output size); the gradient goes to each argmax. */
export function maxPool2dGeneral(x: Tensor, o: Pool2dOptions): Tensor {
  checkImage(x, "maxpool2d");
  const geom = K.convGeometry(x.shape, o.kernel, o.stride, o.padding);
  const shape = [geom.n, geom.outH, geom.outW, geom.c];
  // On a host backend a window wholly in the padding is left to the JS argmax below (it names the window).
  if (onDevice() || (poolsByKernel(x) && !emptyPoolWindow(geom))) return maxPoolByKernel(x, geom, shape, "maxpool2d");
  return gather(x, K.maxPoolArgmaxGeneral(onHost("maxpool2d", x.storage)[0], geom), shape);
}

/**
 * Average pooling as PyTorch's AvgPool2d (ceil_mode false): zero padding, divided by kh·kw when countIncludePad,
 * else by the number of input elements in the window.
 */
export function avgPool2dGeneral(x: Tensor, o: Pool2dOptions & { countIncludePad: boolean }): Tensor {
  checkImage(x, "avgpool2d");
  const geom = K.convGeometry(x.shape, o.kernel, o.stride, o.padding);
  // Checks the windows (one wholly in the padding has no divisor without countIncludePad) before any kernel runs.
  if (!o.countIncludePad) K.avgPoolWindows(geom, false);
  return windowMean(x, geom, o.countIncludePad);
}

/** Average pooling over geom's windows: a fixed linear map, differentiable through its adjoint. */
function windowMean(x: Tensor, geom: K.ConvGeometry, countIncludePad: boolean): Tensor {
  const shape = [geom.n, geom.outH, geom.outW, geom.c];
  const out = newOutputLike(x.storage, sizeOf(shape));
  run("avgpool2d", "avgPool", x.storage, out, geom, countIncludePad);
  return record(out, shape, [x], (g) => [windowMeanAdjoint(g, geom, countIncludePad, x.shape)]);
}

/** Adjoint of windowMean: spreads each window's gradient over the window, divided by its divisor. */
function windowMeanAdjoint(
  g: Tensor,
  geom: K.ConvGeometry,
  countIncludePad: boolean,
  shape: readonly number[],
): Tensor {
  const out = newOutputLike(g.storage, sizeOf(shape));
  run("avgpool2d backward", "avgPoolBackward", g.storage, out, geom, countIncludePad);
  return record(out, shape, [g], (gg) => [windowMean(gg, geom, countIncludePad)]);
}

/** Mean over H and W: [N,H,W,C] → [N,1,1,C] (PyTorch's AdaptiveAvgPool2d(1)). */
export function globalAvgPool(x: Tensor): Tensor {
  checkImage(x, "global_avgpool");
  const [n, h, w, c] = x.shape;
  const hw = h * w;
  if (hw === 0) throw new RangeError(`global_avgpool: input [${x.shape.join(",")}] has no spatial positions`);
  const out = newOutputLike(x.storage, n * c);
  run("global_avgpool", "globalAvgPool", x.storage, out, n, hw, c);
  return record(out, [n, 1, 1, c], [x], (g) => [spreadMean(g, h, w)]);
}

/** Adjoint of globalAvgPool: [N,1,1,C] → [N,H,W,C] with every position g / (H·W). */
function spreadMean(g: Tensor, h: number, w: number): Tensor {
  const [n, , , c] = g.shape;
  const hw = h * w;
  const out = newOutputLike(g.storage, n * hw * c);
  run("global_avgpool backward", "spreadMean", g.storage, out, n, hw, c);
  return record(out, [n, h, w, c], [g], (gg) => [globalAvgPool(gg)]);
}

// ---------------------------------------------------------------------------------------------------------------
// Layout

/** Concatenation along the last axis (channels of NHWC images, features of [N,F]); other axes must agree. */
export function concatChannels(xs: Tensor[]): Tensor {
  if (xs.length === 0) throw new RangeError("concat: needs at least one tensor");
  const first = xs[0];
  const rank = first.shape.length;
  if (rank === 0) throw new RangeError("concat: cannot concatenate scalars");
  const lead = first.shape.slice(0, -1);
  for (const t of xs) {
    if (t.shape.length !== rank || t.shape.some((s, i) => i < rank - 1 && s !== lead[i])) {
      throw new RangeError(
        `concat: shapes [${first.shape.join(",")}] and [${t.shape.join(",")}] differ outside the last axis`,
      );
    }
    if (t.dtype !== first.dtype) throw new RangeError(`concat: mixes ${first.dtype} and ${t.dtype}`);
  }
  if (xs.length === 1) return xs[0];
  const widths = xs.map((t) => t.shape[rank - 1]);
  const total = widths.reduce((a, b) => a + b, 0);
  const rows = sizeOf(lead);
  const out = newOutputLike(first.storage, rows * total);
  run(
    "concat",
    "concatLastAxis",
    xs.map((t) => t.storage),
    widths,
    rows,
    out,
  );
  const shape = [...lead, total];
  return record(out, shape, xs, (g) => {
    let start = 0;
    return xs.map((t, k) => {
      const s = start;
      start += widths[k];
      return t.requiresGrad ? lastAxisSlice(g, s, widths[k], rows, total, t.shape) : null;
    });
  });
}

/** Entries [start, start+width) of the last axis of g (viewed as [rows, total]), as a gather. */
function lastAxisSlice(
  g: Tensor,
  start: number,
  width: number,
  rows: number,
  total: number,
  shape: readonly number[],
): Tensor {
  const idx = new Int32Array(rows * width);
  for (let r = 0, p = 0; r < rows; r++) for (let j = 0; j < width; j++, p++) idx[p] = r * total + start + j;
  return gather(g, idx, shape);
}

/** Axis permutation: result axis i is x's axis perm[i] (like torch.permute / numpy.transpose). */
export function permute(x: Tensor, perm: number[]): Tensor {
  const rank = x.shape.length;
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((p) => !Number.isInteger(p) || p < 0 || p >= rank)) {
    throw new RangeError(
      `permute: [${perm.join(",")}] is not a permutation of the ${rank} axes of [${x.shape.join(",")}]`,
    );
  }
  if (perm.every((p, i) => p === i)) return x;
  const outShape = perm.map((p) => x.shape[p]);
  const out = newOutputLike(x.storage, x.size);
  run("permute", "permute", x.storage, out, x.shape, perm);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return record(out, outShape, [x], (g) => [permute(g, inverse)]);
}
