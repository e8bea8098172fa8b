"""The cost-growth plot: time per image against batch size, one panel per model, one line per impl.

Both axes are logarithmic: per-call overhead shows as a line falling with slope -1 (the same
cost per call, shared by more images), throughput as a flat line; where an impl stops scaling
its line turns up. Drawn with matplotlib's Agg backend (no display needed) and written atomically.
"""

from __future__ import annotations

import io

from simple_conv_net.io import atomic_write_bytes

STYLE = {"torch": ("black", "o"), "vector": ("tab:blue", "s"), "scalar": ("tab:orange", "^")}


def cost_growth_png(report: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    growth = report["cost_growth"]
    models = report["config"]["models"]
    figure, axes = plt.subplots(1, len(growth), figsize=(4.2 * len(growth), 3.8), squeeze=False, sharey=True)
    for axis, (model, per_impl) in zip(axes[0], growth.items()):
        for impl, per_batch in per_impl.items():
            sizes = sorted(int(b) for b in per_batch)
            colour, marker = STYLE.get(impl, (None, "x"))
            axis.plot(sizes, [per_batch[str(b)] for b in sizes], marker=marker, color=colour, label=impl)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_title(models[model]["label"], fontsize=9)
        axis.set_xlabel("batch size")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("ms per image (training step)")
    axes[0][0].legend()
    machine = report["machine"]
    figure.suptitle(f"cost growth, {report['config']['device']}: {machine['cpu_model']}, torch threads "
                    f"{machine['torch_threads']}, {machine['date'][:10]}", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
