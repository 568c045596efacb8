"""The CPU's own limit and how near a style-transfer step comes to it.

    nice uv run python bench/cpu_step.py gemm [--n 2048] [--reps 5]     # fp32 GEMM GFLOP/s, 1 and all threads
    nice uv run python bench/cpu_step.py flops [--size 512]             # FLOPs of one step's trunk
    nice uv run python bench/cpu_step.py ab [--size 512] [--rounds 3] [--variants base,channels_last,…]

`flops` counts (torch.utils.flop_counter) the VGG-19 forward to relu5_1 and the gradient with respect
to the input picture only (the weights need none), as one engine step does. `ab` times that trunk
step — forward to the engine's layers, a loss on every one, backward to the picture — under each
variant in turn, round after round (A, B, C, A, B, C …), so load from other work on a shared machine
falls on all of them alike; it prints each variant's median wall and CPU (process_time) seconds per
step, its GFLOP/s and the load average. Variants: base (the engine as it is), channels_last (model
and picture in NHWC), threads1 (one intra-op thread), no_mkldnn (oneDNN off: ATen's own convolutions),
compile (torch.compile of the trunk; the first call's compile time is reported apart).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from typing import Callable

import torch

from engine.vgg import CONTENT_LAYERS, STYLE_LAYERS, depth_for, load_vgg

LAYERS = tuple(dict.fromkeys(CONTENT_LAYERS + STYLE_LAYERS))


def gemm(n: int, reps: int) -> None:
    """Best of `reps` n×n fp32 matrix products, per wall second and per CPU second of this process (on a
    shared machine the second is the rate while our threads hold the cores: the machine's own limit)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        torch.mm(a, b)  # warm-up
        wall = cpu = float("inf")
        for _ in range(reps):
            start = (time.perf_counter(), time.process_time())
            torch.mm(a, b)
            wall, cpu = min(wall, time.perf_counter() - start[0]), min(cpu, time.process_time() - start[1])
        flop = 2 * n**3
        print(f"gemm fp32 {n}×{n}, {threads} thread(s): {flop / wall / 1e9:.1f} GFLOP/s per wall second, "
              f"{flop / cpu / 1e9 * threads:.1f} GFLOP/s per {threads} busy core(s) (CPU time; "
              f"load {os.getloadavg()[0]:.2f})", flush=True)


def trunk_step(size: int, channels_last: bool = False, compiled: bool = False
               ) -> tuple[Callable[[], float], torch.Tensor]:
    """One engine-like step at size×size: forward to LAYERS, a loss on each, backward to the picture."""
    vgg = load_vgg("cpu", None, depth_for(LAYERS))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:  # a copy: load_vgg's cached model stays as the engine has it
        vgg = copy.deepcopy(vgg).to(memory_format=fmt)
    forward = torch.compile(vgg) if compiled else vgg
    image = (torch.rand(1, 3, size, size) * 255).contiguous(memory_format=fmt).requires_grad_(True)

    def step() -> float:
        image.grad = None
        feats = forward(image, LAYERS, "max")
        loss = sum((f.float() ** 2).mean() for f in feats.values())
        loss.backward()
        return loss.detach().item()

    return step, image


def flops(size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    step, _ = trunk_step(size)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def ab(size: int, rounds: int, variants: list[str]) -> None:
    total = flops(size)
    print(f"one step at {size}×{size}: {total / 1e9:.1f} GFLOP (forward to relu5_1 + input gradient)", flush=True)
    threads = torch.get_num_threads()
    steps: dict[str, Callable[[], float]] = {}
    for name in variants:
        start = time.perf_counter()
        torch.backends.mkldnn.enabled = name != "no_mkldnn"
        step, _ = trunk_step(size, channels_last=name == "channels_last", compiled=name == "compile")
        step()  # warm-up (and, compiled, the compile)
        if name == "compile":
            print(f"compile: first call {time.perf_counter() - start:.1f} s", flush=True)
        steps[name] = step
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name in variants:
            torch.backends.mkldnn.enabled = name != "no_mkldnn"
            torch.set_num_threads(1 if name == "threads1" else threads)
            start = (time.perf_counter(), time.process_time())
            steps[name]()
            times[name].append((time.perf_counter() - start[0], time.process_time() - start[1]))
    torch.backends.mkldnn.enabled = True
    torch.set_num_threads(threads)
    for name in variants:
        wall = statistics.median(t[0] for t in times[name])
        cpu = statistics.median(t[1] for t in times[name])
        busy = 1 if name == "threads1" else threads
        print(f"{name:>14}: wall {wall:.2f} s/step ({total / wall / 1e9:.1f} GFLOP/s), CPU {cpu:.2f} s/step "
              f"({total / cpu * busy / 1e9:.1f} GFLOP/s on {busy} busy core(s)); "
              f"walls {' '.join(f'{t[0]:.2f}' for t in times[name])}", flush=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {threads} threads", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("gemm", "flops", "ab"))
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="base,channels_last,threads1,no_mkldnn")
    args = parser.parse_args()
    if args.what == "gemm":
        gemm(args.n, args.reps)
    elif args.what == "flops":
        print(f"{flops(args.size) / 1e9:.1f} GFLOP per step at {args.size}×{args.size}")
    else:
        ab(args.size, args.rounds, args.variants.split(","))


if __name__ == "__main__":
    main()
