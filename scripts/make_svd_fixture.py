#!/usr/bin/env python3
"""Independent reference for the certified spectral norm (issue 13): float32 matrices and their singular values
computed by torch.linalg.svdvals in float64 (LAPACK's divide-and-conquer SVD, unrelated to gcx's Jacobi code).

Cases: random Gaussian matrices of the layer shapes gcx uses (tall, wide, square), a matrix whose top two
singular values differ by 1e-4 (where 50 power iterations under-estimate σ_max), and a rank-one matrix.

Usage: /usr/bin/python3 scripts/make_svd_fixture.py [--out test/fixtures/torch/svd/reference.json]
"""
import argparse, json
import torch

def close_top_two(rows, cols, gen):
    u, _ = torch.linalg.qr(torch.randn(rows, rows, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, cols, generator=gen, dtype=torch.float64))
    k = min(rows, cols)
    s = torch.linspace(0.5, 0.01, k, dtype=torch.float64)
    s[0], s[1] = 1.0, 1.0 - 1e-4
    return (u[:, :k] * s) @ v[:, :k].T

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures/torch/svd/reference.json")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(13)
    cases = {
        "tall_100x64": torch.randn(100, 64, generator=gen, dtype=torch.float64) * 0.1,
        "wide_10x64": torch.randn(10, 64, generator=gen, dtype=torch.float64),
        "square_48x48": torch.randn(48, 48, generator=gen, dtype=torch.float64) / 7,
        "close_top_two_60x40": close_top_two(60, 40, gen),
        "rank_one_30x20": torch.outer(torch.randn(30, generator=gen, dtype=torch.float64), torch.randn(20, generator=gen, dtype=torch.float64)),
    }
    out = []
    for name, m in cases.items():
        m32 = m.to(torch.float32)
        s = torch.linalg.svdvals(m32.to(torch.float64))
        out.append({"name": name, "shape": list(m32.shape), "data": m32.flatten().tolist(), "singular_values": s.tolist()})
    with open(args.out, "w") as f:
        json.dump({"generator": "torch.linalg.svdvals (float64) " + torch.__version__, "cases": out}, f)

if __name__ == "__main__":
    main()
