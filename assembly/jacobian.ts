// Fused forward-mode Jacobian of a small MLP (issue 11): for each example x_e the value h and the d unit tangents
// ∂h/∂x_j are pushed through every layer in one call, and ‖∂g(x_e)/∂x_e‖_F² (logits, identity output) is written
// out. Nothing is allocated: weights are transposed once per call into caller-provided scratch (one area per thread,
// side by side, so two threads can share the examples), and each example runs in two scratch vectors-of-vectors.
//
// Per layer (W [out, in] as PyTorch nn.Linear / network.ts), with V = d + 1 vectors (value and d tangents):
//   acc_v = [v = 0] b + Σ_{i active} H_v[i] · Wᵀ[i, :]     (an axpy per active input, 3 vectors × 16 outputs in
//   registers at once), then the hidden activation: relu keeps z > 0 and masks the tangents (inactive inputs of the
//   next layer are skipped: h and every tangent are exactly 0 there), tanh maps z to tanh z and scales the tangents
//   by 1 − tanh², identity leaves them.
// Every example is computed alone, in a fixed order, so the result for an example does not depend on the row range
// (thread split) it was computed in.

import { tanh4 } from "./simdmath";
import { threadIndex } from "./scratch";

// Layer table: 4 int32 per layer: W pointer, b pointer, in, out.
// @ts-ignore: decorator
@inline function lw(t: usize, l: i32): usize {
  return <usize>load<i32>(t + (<usize>l << 4));
}
// @ts-ignore: decorator
@inline function lb(t: usize, l: i32): usize {
  return <usize>load<i32>(t + (<usize>l << 4), 4);
}
// @ts-ignore: decorator
@inline function lin(t: usize, l: i32): i32 {
  return load<i32>(t + (<usize>l << 4), 8);
}
// @ts-ignore: decorator
@inline function lout(t: usize, l: i32): i32 {
  return load<i32>(t + (<usize>l << 4), 12);
}
// @ts-ignore: decorator
@inline function pad4(n: i32): i32 {
  return (n + 3) & ~3;
}

// Scratch layout (bytes from the scratch pointer, every block 16-byte aligned):
//   per layer l: Wᵀ_l [in_l, pad4(out_l)] then b_l [pad4(out_l)] (zero padded);
//   then two example buffers of Vp rows × ld floats (Vp = 3·ceil((d+1)/3), ld = pad4 of the widest layer or d),
//   then the active-index list (ld int32).
function widest(d: i32, layers: usize, nLayers: i32): i32 {
  let w = pad4(d);
  for (let l = 0; l < nLayers; l++) w = max(w, pad4(lout(layers, l)));
  return w;
}

function groupsOf(d: i32): i32 {
  return (d + 1 + 2) / 3;
}

/** Bytes of scratch jacobian_mlp_sqnorms needs for inputs of dimension d and this layer table (per thread). */
export function jacobian_mlp_scratch_bytes(d: i32, layers: usize, nLayers: i32): i32 {
  let floats: i32 = 0;
  for (let l = 0; l < nLayers; l++) floats += (lin(layers, l) + 1) * pad4(lout(layers, l));
  const ld = widest(d, layers, nLayers);
  floats += 2 * 3 * groupsOf(d) * ld + ld;
  return floats << 2;
}

// acc rows [g0, g0 + 3) of Hout over outputs [c, c + 16): Σ over the active inputs.
// @ts-ignore: decorator
@inline function chunk16(hin: usize, hout: usize, wt: usize, ldw: usize, bias: usize, useBias: bool, act: usize, nAct: i32,
  ldh: usize, c: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  if (useBias) {
    a0 = v128.load(bias + c);
    a1 = v128.load(bias + c, 16);
    a2 = v128.load(bias + c, 32);
    a3 = v128.load(bias + c, 48);
  }
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const h1 = hin + ldh, h2 = hin + 2 * ldh;
  for (let k = 0; k < nAct; k++) {
    const i = <usize>load<i32>(act + (<usize>k << 2));
    const io = i << 2;
    const w = wt + i * ldw + c;
    const w0 = v128.load(w), w1 = v128.load(w, 16), w2 = v128.load(w, 32), w3 = v128.load(w, 48);
    const s0 = v128.load32_splat(hin + io), s1 = v128.load32_splat(h1 + io), s2 = v128.load32_splat(h2 + io);
    a0 = f32x4.add(a0, f32x4.mul(s0, w0)); a1 = f32x4.add(a1, f32x4.mul(s0, w1));
    a2 = f32x4.add(a2, f32x4.mul(s0, w2)); a3 = f32x4.add(a3, f32x4.mul(s0, w3));
    b0 = f32x4.add(b0, f32x4.mul(s1, w0)); b1 = f32x4.add(b1, f32x4.mul(s1, w1));
    b2 = f32x4.add(b2, f32x4.mul(s1, w2)); b3 = f32x4.add(b3, f32x4.mul(s1, w3));
    c0 = f32x4.add(c0, f32x4.mul(s2, w0)); c1 = f32x4.add(c1, f32x4.mul(s2, w1));
    c2 = f32x4.add(c2, f32x4.mul(s2, w2)); c3 = f32x4.add(c3, f32x4.mul(s2, w3));
  }
  const o0 = hout + c, o1 = o0 + ldh, o2 = o1 + ldh;
  v128.store(o0, a0); v128.store(o0, a1, 16); v128.store(o0, a2, 32); v128.store(o0, a3, 48);
  v128.store(o1, b0); v128.store(o1, b1, 16); v128.store(o1, b2, 32); v128.store(o1, b3, 48);
  v128.store(o2, c0); v128.store(o2, c1, 16); v128.store(o2, c2, 32); v128.store(o2, c3, 48);
}

// The same over outputs [c, c + 4).
// @ts-ignore: decorator
@inline function chunk4(hin: usize, hout: usize, wt: usize, ldw: usize, bias: usize, useBias: bool, act: usize, nAct: i32,
  ldh: usize, c: usize): void {
  let a0 = useBias ? v128.load(bias + c) : f32x4.splat(0);
  let b0 = f32x4.splat(0), c0 = f32x4.splat(0);
  const h1 = hin + ldh, h2 = hin + 2 * ldh;
  for (let k = 0; k < nAct; k++) {
    const i = <usize>load<i32>(act + (<usize>k << 2));
    const io = i << 2;
    const w0 = v128.load(wt + i * ldw + c);
    a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(hin + io), w0));
    b0 = f32x4.add(b0, f32x4.mul(v128.load32_splat(h1 + io), w0));
    c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(h2 + io), w0));
  }
  const o0 = hout + c;
  v128.store(o0, a0);
  v128.store(o0 + ldh, b0);
  v128.store(o0 + 2 * ldh, c0);
}

/**
 * out[e] (f64) = ‖∂g(x_e)/∂x_e‖_F² for examples e in [r0, r1) of x [n, d] (f32), g the MLP described by `layers`
 * (nLayers rows of int32 (W ptr, b ptr, in, out), W [out, in] row-major, b [out]; layer l's in equals layer l−1's
 * out, the first layer's in equals d). Hidden layers apply act (0 identity, 1 relu, 2 tanh); the last layer is
 * linear: the logits (the paper's GC) are differentiated.
 * scratch: jacobian_mlp_scratch_bytes(d, layers, nLayers) bytes, 16-byte aligned, one per thread; out is f64 [n],
 * 8-byte aligned.
 */
export function jacobian_mlp_sqnorms(x: usize, d: i32, layers: usize, nLayers: i32, act: i32, scratch: usize, out: usize,
  r0: i32, r1: i32): void {
  sqnorms(x, d, layers, nLayers, act, 0, scratch, out, r0, r1);
}

/** As jacobian_mlp_sqnorms, for the softmax probabilities instead of the logits (jacobianSqNormsForward "softmax"). */
export function jacobian_mlp_sqnorms_softmax(x: usize, d: i32, layers: usize, nLayers: i32, act: i32, scratch: usize,
  out: usize, r0: i32, r1: i32): void {
  sqnorms(x, d, layers, nLayers, act, 1, scratch, out, r0, r1);
}

function sqnorms(x: usize, d: i32, layers: usize, nLayers: i32, act: i32, output: i32, scratch: usize, out: usize,
  r0: i32, r1: i32): void {
  // One scratch area per thread, side by side (the caller reserves jacobian_mlp_scratch_bytes per thread).
  scratch += <usize>threadIndex() * <usize>jacobian_mlp_scratch_bytes(d, layers, nLayers);
  // Transposed, zero-padded weights and padded biases.
  let p = scratch;
  for (let l = 0; l < nLayers; l++) {
    const w = lw(layers, l), b = lb(layers, l), nin = lin(layers, l), nout = lout(layers, l), op = pad4(nout);
    for (let i = 0; i < nin; i++) {
      const row = p + (<usize>(i * op) << 2);
      for (let o = 0; o < op; o++) store<f32>(row + (<usize>o << 2), o < nout ? load<f32>(w + (<usize>(o * nin + i) << 2)) : 0);
    }
    p += <usize>(nin * op) << 2;
    for (let o = 0; o < op; o++) store<f32>(p + (<usize>o << 2), o < nout ? load<f32>(b + (<usize>o << 2)) : 0);
    p += <usize>op << 2;
  }
  const ld = widest(d, layers, nLayers);
  const ldh = <usize>ld << 2;
  const G = groupsOf(d), Vp = 3 * G;
  const bufBytes = <usize>Vp * ldh;
  let ha = p, hb = p + bufBytes;
  const act0 = hb + bufBytes;
  memory.fill(ha, 0, 2 * bufBytes); // rows beyond d stay zero from here on
  const tanhAct = act == 2, reluAct = act == 1;

  for (let e = r0; e < r1; e++) {
    // Layer 0 input: the example and the d unit tangents.
    let hin = ha, hout = hb;
    for (let j = 0; j < d; j++) {
      store<f32>(hin + (<usize>j << 2), load<f32>(x + (<usize>(e * d + j) << 2)));
      for (let v = 1; v < Vp; v++) store<f32>(hin + <usize>v * ldh + (<usize>j << 2), v == j + 1 ? 1 : 0);
    }
    let nAct = d;
    for (let k = 0; k < d; k++) store<i32>(act0 + (<usize>k << 2), k);
    let wp = scratch;
    for (let l = 0; l < nLayers; l++) {
      const nin = lin(layers, l), nout = lout(layers, l), op = pad4(nout);
      const ldw = <usize>op << 2;
      const bias = wp + <usize>(nin * op) * 4;
      for (let g = 0; g < G; g++) {
        const gi = hin + <usize>(3 * g) * ldh, go = hout + <usize>(3 * g) * ldh;
        let c: i32 = 0;
        for (; c + 16 <= op; c += 16) chunk16(gi, go, wp, ldw, bias, g == 0, act0, nAct, ldh, <usize>c << 2);
        for (; c < op; c += 4) chunk4(gi, go, wp, ldw, bias, g == 0, act0, nAct, ldh, <usize>c << 2);
      }
      wp = bias + (<usize>op << 2);
      if (l < nLayers - 1) {
        // activation on the value row, derivative applied to the tangent rows; next layer's active inputs
        nAct = 0;
        if (reluAct) {
          for (let o = 0; o < nout; o++) {
            const q = hout + (<usize>o << 2);
            if (load<f32>(q) > 0) {
              store<i32>(act0 + (<usize>nAct << 2), o);
              nAct++;
            } else {
              for (let v = 0; v <= d; v++) store<f32>(q + <usize>v * ldh, 0);
            }
          }
        } else {
          if (tanhAct) {
            for (let o = 0; o < op; o += 4) {
              const q = hout + (<usize>o << 2);
              const t = tanh4(v128.load(q));
              v128.store(q, t);
              const dv = f32x4.sub(f32x4.splat(1.0), f32x4.mul(t, t));
              for (let v = 1; v <= d; v++) {
                const qv = q + <usize>v * ldh;
                v128.store(qv, f32x4.mul(v128.load(qv), dv));
              }
            }
          }
          for (let o = 0; o < nout; o++) store<i32>(act0 + (<usize>o << 2), o);
          nAct = nout;
        }
      }
      const t = hin;
      hin = hout;
      hout = t;
    }
    // hin holds the logits and their tangents.
    const k = lout(layers, nLayers - 1);
    let s: f64 = 0;
    if (output == 1) {
      // softmax probabilities p in f64 (parked in the first two rows of the other buffer, which the next example
      // rewrites before reading), and per tangent t, ‖p ⊙ (t − ⟨p, t⟩)‖² (softmax's Jacobian applied to t)
      const pr = hout;
      let mx = -Infinity;
      for (let o = 0; o < k; o++) mx = Math.max(mx, <f64>load<f32>(hin + (<usize>o << 2)));
      let z: f64 = 0;
      for (let o = 0; o < k; o++) {
        const ez = Math.exp(<f64>load<f32>(hin + (<usize>o << 2)) - mx);
        store<f64>(pr + (<usize>o << 3), ez);
        z += ez;
      }
      for (let o = 0; o < k; o++) store<f64>(pr + (<usize>o << 3), load<f64>(pr + (<usize>o << 3)) / z);
      for (let v = 1; v <= d; v++) {
        const row = hin + <usize>v * ldh;
        let dot: f64 = 0;
        for (let o = 0; o < k; o++) dot += load<f64>(pr + (<usize>o << 3)) * <f64>load<f32>(row + (<usize>o << 2));
        for (let o = 0; o < k; o++) {
          const q = load<f64>(pr + (<usize>o << 3)) * (<f64>load<f32>(row + (<usize>o << 2)) - dot);
          s += q * q;
        }
      }
    } else {
      for (let v = 1; v <= d; v++) {
        const row = hin + <usize>v * ldh;
        for (let o = 0; o < k; o++) {
          const q = <f64>load<f32>(row + (<usize>o << 2));
          s += q * q;
        }
      }
    }
    store<f64>(out + (<usize>e << 3), s);
  }
}
