"""What the PyTorch baselines share: timing training steps and printing their median rate in
the form scripts/torch_ratio.sh reads."""
import statistics
import time

import torch


def time_steps(loss_fn, optim, warmup, steps, per_step, unit, threads):
    """Runs `warmup + steps` training steps (forward by `loss_fn`, backward, `optim`'s step),
    and prints the median step after the warm-up and its rate in `unit`s, `per_step` a step."""
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"torch {torch.__version__}, {threads} threads, {torch.backends.cpu.get_cpu_capability()}: "
          f"median step {median * 1000:.0f} ms, {per_step / median:.0f} {unit}/s "
          f"(min {per_step / max(times):.0f}, max {per_step / min(times):.0f})")
