#!/usr/bin/env python3
"""Plot the loss curve of a tools/model2/train.py run and print the figures its model card
quotes (tokens seen, steps, wall time, hardware, last losses).

Interpreter: any Python 3 with matplotlib (e.g. /work/venv/bin/python or the pyenv python3).

Usage:
    python3 tools/model2/plot_training.py --run /work/data/model2/run \\
        --figure models/docs-llama/loss.png
"""

import argparse
import json
import math
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="train.py's --out folder (log.jsonl)")
    ap.add_argument("--figure", required=True)
    a = ap.parse_args()
    rows = []
    with open(os.path.join(a.run, "log.jsonl")) as f:
        for line in f:
            rows.append(json.loads(line))
    # A resumed run may repeat steps after its last checkpoint: keep the last record of each.
    by_step = {}
    for r in rows:
        by_step[r["step"]] = r
    rows = [by_step[s] for s in sorted(by_step)]
    held = [r for r in rows if "heldout_loss" in r]

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot([r["tokens"] / 1e6 for r in rows], [r["loss"] for r in rows], lw=0.8,
            label="train (mean of the last 10 steps)")
    ax.plot([r["tokens"] / 1e6 for r in held], [r["heldout_loss"] for r in held], "o-", ms=3,
            label="held-out (64 windows of 512 tokens)")
    for r0, r1 in zip(rows, rows[1:]):
        if r1["ctx"] != r0["ctx"]:
            ax.axvline(r1["tokens"] / 1e6, color="grey", lw=0.5, ls=":")
            # y in axes units: the label sits on the frame's top whatever the y limits become
            ax.text(r1["tokens"] / 1e6, 1.0, f" ctx {r1['ctx']}", fontsize=7, va="bottom",
                    transform=ax.get_xaxis_transform())
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_ylim(bottom=max(0.0, min(r["loss"] for r in rows) - 0.3),
                top=min(8.0, max(r["loss"] for r in rows)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.figure, dpi=130)

    state = {}
    try:
        import torch  # noqa: F401  (only to read the checkpoint's state, if available)
        state = torch.load(os.path.join(a.run, "ckpt.pt"), map_location="cpu",
                           weights_only=False)["state"]
    except (ImportError, OSError):
        pass
    last = rows[-1]
    print(f"steps {last['step']}, tokens {last['tokens'] / 1e6:.1f}M, "
          f"train wall time {last['seconds'] / 3600:.2f} h (excluding evaluation)")
    if held:
        h = held[-1]
        print(f"held-out loss {h['heldout_loss']:.4f} nats/token at {h['tokens'] / 1e6:.1f}M "
              f"tokens ({h['heldout_loss'] / math.log(2):.3f} bits/token)")
    if state:
        print(f"hardware: {'; '.join(state.get('hardware', []))}")
        if "final_heldout_loss_ctx2048" in state:
            print(f"final held-out loss at ctx 2048: {state['final_heldout_loss_ctx2048']:.4f}")


if __name__ == "__main__":
    main()
