"""The report as text tables, and as JSON.

Sections, in order: the header (machine, date and load average taken before measuring);
training per point; the homework's answer (SimpleConvNet's epoch time); the ratio matrix against
the targets; with --compile, the compiled impls' compile time and ratios; the cost growth (time
per image against batch size); warm-up; inference; memory; the physical bound; the per-layer
profile of every point.
"""

from __future__ import annotations

import json

from simple_conv_net.io import atomic_write_text

# Layer names as the models' layers() tables give them, for the per-layer tables' footnote.
LAYER_NOTE = ("(layer names as in the model's layers() table: reshape = flatten, output = log_softmax, bn = batch "
              "norm; 'rest of step' = the median step minus these layers: autograd bookkeeping, zero_grad and the "
              "SGD update)")


def _batch_columns(batch_sizes, width=8) -> str:
    return "".join(f"{b:>{width}}" for b in batch_sizes)


def header(report: dict) -> list[str]:
    config, machine = report["config"], report["machine"]
    if config["full_epoch"]:
        length = "one full epoch"
    elif config["steps"]:
        length = f"{config['steps']} steps"
    else:
        length = f"steps filling {config['budget_s']:g} s of the slowest impl"
    models = ", ".join(spec["label"] for spec in config["models"].values())
    out = [f"training steps of {models}; batch sizes {', '.join(map(str, config['batch_sizes']))}; "
           f"impls {', '.join(config['impls'])}; each point {length} x {config['repeats']} interleaved rounds "
           f"per impl, device {config['device']}"]
    numba_threads = f", numba {machine['numba_threads']}" if "numba_threads" in machine else ""
    start = machine["load_average_start"]
    end = machine["load_average_end"]
    load = f"load average {start[0]:.2f} at start, {end[0]:.2f} at end" if start and end else "load average unknown"
    out.append(f"{machine['cpu_model']}, {machine['usable_cores']} usable cores, threads: torch "
               f"{machine['torch_threads']}{numba_threads}; torch {machine['torch_version']}, numba "
               f"{machine['numba_version']}; started {machine['date']}; {load}")
    if "cuda_device" in machine:
        out.append(f"GPU: {machine['cuda_device']}")
    for impl, reason in config["skipped"].items():
        out.append(f"SKIPPED {impl}: {reason}")
    for reason in config["skipped_points"]:
        out.append(f"SKIPPED {reason}")
    return out


def training_table(report: dict) -> list[str]:
    out = ["training (forward + backward + SGD step), ms per step over the rounds:",
           f"{'model':<10}{'batch':>6}{'steps':>6}  {'impl':<8}{'min':>9}{'median':>9}{'max':>9}{'images/s':>10}"
           f"{'epoch s (est.)':>16}{'epoch s (meas.)':>17}{'x torch':>9}{'x limit':>9}"]
    for point in report["points"]:
        for impl, result in point["impls"].items():
            t = result["train"]
            step = t["ms_per_step"]
            measured = f"{t['epoch_seconds_measured']['median']:.1f}" if t["epoch_seconds_measured"] else "-"
            ratio = f"{t['ratio_to_torch']:.2f}" if t["ratio_to_torch"] else "-"
            out.append(f"{point['model']:<10}{point['batch_size']:>6}{point['steps_per_round']:>6}  {impl:<8}"
                       f"{step['min']:>9.2f}{step['median']:>9.2f}{step['max']:>9.2f}{t['images_per_second']:>10.0f}"
                       f"{t['epoch_seconds_estimated']:>16.1f}{measured:>17}{ratio:>9}{t['x_of_limit']:>9.1f}")
    return out


def answers(report: dict) -> list[str]:
    """The homework's question: how long one epoch of SimpleConvNet takes with each impl."""
    out = []
    for point in report["points"]:
        if point["model"] != "simple":
            continue
        answer = ", ".join(f"{impl} {r['train']['epoch_seconds_estimated']:.1f} s" for impl, r in point["impls"].items())
        out.append(f"ANSWER - time on one epoch ({report['config']['epoch_images']} images, batch "
                   f"{point['batch_size']}, from the median step): {answer}")
    return out


def _by_model(report: dict) -> dict:
    """{model: {batch size: point}} in the run's order."""
    grid: dict = {}
    for point in report["points"]:
        grid.setdefault(point["model"], {})[point["batch_size"]] = point
    return grid


def ratio_matrix(report: dict) -> list[str]:
    config = report["config"]
    batch_sizes = config["batch_sizes"]
    impls = [impl for impl in config["impls"] if impl != "torch"]
    if "torch" not in config["impls"] or not impls:
        return []
    out = ["ratio to native torch (median step over torch's median step, same rounds); "
           "'!' marks a miss of the target:",
           f"{'model':<10}{'impl':<8}{_batch_columns(batch_sizes)}"]
    misses = []
    for model, row in _by_model(report).items():
        out.append(f"{model:<10}{'torch ms':<8}" + "".join(
            f"{row[b]['impls']['torch']['train']['ms_per_step']['median']:>8.2f}" if b in row else f"{'':>8}"
            for b in batch_sizes))
        for impl in impls:
            cells = ""
            for b in batch_sizes:
                if b not in row:
                    cells += f"{'':>8}"
                    continue
                t = row[b]["impls"][impl]["train"]
                miss = t["target"] is not None and t["ratio_to_torch"] > t["target"]
                if miss:
                    misses.append(f"{model} {impl} batch {b}: {t['ratio_to_torch']:.2f} > {t['target']}")
                cells += f"{t['ratio_to_torch']:>7.2f}{'!' if miss else ' '}"
            out.append(f"{model:<10}{impl:<8}{cells}")
    targets = "; ".join(f"{impl} " + ", ".join(f"<= {ratio}x from batch {smallest}" for smallest, ratio in rules)
                        for impl, rules in config["targets"].items())
    if targets:
        out.append(f"targets ({config['device']}): {targets}")
        out.append("misses: " + ("; ".join(misses) if misses else "none"))
    return out


def compiled_table(report: dict) -> list[str]:
    """--compile: each compiled impl's compile time, on its own line, then its ratios against the targets."""
    config = report["config"]
    if not config.get("compile"):
        return []
    compiled = [impl for impl in config["impls"] if impl.endswith("+c")]
    out = ["torch.compile ('<impl>+c': the model compiled whole, fullgraph, inductor, the batch dimension dynamic; "
           "loss and SGD step eager, as train.py --compile):",
           "compile time, s (first training step: forward and backward graphs / first inference: the eval graph):"]
    for point in report["points"]:
        out.append(f"  {point['model']:<10}batch {point['batch_size']:>4}: " + ", ".join(
            f"{impl} {point['impls'][impl]['warmup']['compile_s']:.1f}" for impl in compiled))
    for model, entry in report["models"].items():
        out.append(f"  {model:<10}eval graph: " + ", ".join(
            f"{impl} {entry['inference'][impl]['compile_s']:.1f}" for impl in compiled))
    out.append("ratios of the median step: to eager native torch, to compiled native torch, to the impl's own eager "
               "steps; '!' marks a miss of the target:")
    out.append(f"{'model':<10}{'batch':>6}  {'impl':<10}{'x torch':>9}{'x torch+c':>11}{'x eager':>9}")
    misses = []
    for point in report["points"]:
        for impl in compiled:
            t = point["impls"][impl]["train"]
            rule = config["compiled_targets"].get(impl)
            cells = ""
            for key, width in (("ratio_to_torch", 9), ("ratio_to_compiled_torch", 11), ("ratio_to_eager", 9)):
                value = t.get(key)
                miss = rule is not None and rule[0] == key and value is not None and value > rule[1]
                if miss:
                    misses.append(f"{point['model']} {impl} batch {point['batch_size']}: {key} {value:.2f} > {rule[1]}")
                cells += f"{value:>{width - 1}.2f}{'!' if miss else ' '}" if value is not None else f"{'-':>{width}}"
            out.append(f"{point['model']:<10}{point['batch_size']:>6}  {impl:<10}{cells}")
    rules = {"ratio_to_torch": "x eager torch", "ratio_to_eager": "x its own eager"}
    out.append("targets: " + "; ".join(f"{impl} <= {ratio} {rules[key]}"
                                       for impl, (key, ratio) in config["compiled_targets"].items()))
    out.append("misses: " + ("; ".join(misses) if misses else "none"))
    return out


def cost_growth_table(report: dict) -> list[str]:
    config = report["config"]
    batch_sizes = config["batch_sizes"]
    out = ["cost growth: ms per image (median step / batch size); flat = throughput-bound, falling = "
           "per-call overhead being shared out:",
           f"{'model':<10}{'impl':<8}{_batch_columns(batch_sizes, 9)}"]
    for model, per_impl in report["cost_growth"].items():
        for impl, per_batch in per_impl.items():
            out.append(f"{model:<10}{impl:<8}" + "".join(
                f"{per_batch[str(b)]:>9.4f}" if str(b) in per_batch else f"{'':>9}" for b in batch_sizes))
    return out


def warmup_table(report: dict) -> list[str]:
    impls = report["config"]["impls"]
    out = ["warm-up: import of each impl's ops, ms: " + ", ".join(
               f"{impl} {ms:.1f}" for impl, ms in report["import_ms"].items()),
           "first training step at each point, ms (scalar's first point includes numba compiling or loading "
           "its cached kernels; other points may compile new shapes' specialisations; '+c': torch.compile's):",
           f"{'model':<10}{'batch':>6}" + "".join(f"{impl:>12}" for impl in impls)]
    for point in report["points"]:
        out.append(f"{point['model']:<10}{point['batch_size']:>6}" + "".join(
            f"{point['impls'][impl]['warmup']['first_step_ms']:>12.1f}" for impl in impls))
    return out


def inference_table(report: dict) -> list[str]:
    out = ["inference, test images at batch 1000 under torch.no_grad(), images/s median (min..max):"]
    for model, entry in report["models"].items():
        for impl, inf in entry["inference"].items():
            ips = inf["images_per_second"]
            out.append(f"  {model:<10}{impl:<8}{ips['median']:9.0f}  ({ips['min']:.0f}..{ips['max']:.0f}, "
                       f"{inf['images']} images per round)")
    return out


def memory_table(report: dict) -> list[str]:
    entries = {model: entry["memory"] for model, entry in report["models"].items() if entry["memory"]}
    if not entries:
        return []
    out = ["peak memory growth (fresh subprocess per impl; RSS high-water mark over the phase minus RSS before it, "
           "MiB):"]
    for model, probes in entries.items():
        for impl in report["config"]["impls"]:
            m = probes.get(impl)
            if m is None:
                continue
            if "error" in m:
                out.append(f"  {model:<10}{impl:<8}probe failed: {m['error']}")
                continue
            line = (f"  {model:<10}{impl:<8}batch {probes['batch_size']}: warm-up step "
                    f"{m['warmup_rss_peak_growth_mib']:7.1f}   {m['steps']} training steps "
                    f"{m['train_rss_peak_growth_mib']:7.1f}   inference batch 1000 {m['inference_rss_peak_growth_mib']:7.1f}")
            if "train_cuda_peak_growth_mib" in m:
                line += (f"   CUDA allocated: train {m['train_cuda_peak_growth_mib']:.1f}, "
                         f"inference {m['inference_cuda_peak_growth_mib']:.1f}")
            if not m.get("peak_reset_supported", True):
                line += "   (peak could not be reset: upper bound)"
            out.append(line)
    return out


def bound_table(report: dict) -> list[str]:
    out = ["physical bound: FLOPs of a training step (from the shapes) / the float32 square-GEMM rate measured in "
           "the same rounds; x limit = median step / that time:"]
    for point in report["points"]:
        bound = point["bound"]
        gemm = bound["gemm_flops_per_second"]
        out.append(f"  {point['model']:<10}batch {point['batch_size']:>4}: "
                   f"{bound['flops']['total_per_step'] / 1e6:9.2f} MFLOP / {gemm['median'] / 1e9:.1f} GFLOP/s "
                   f"({gemm['min'] / 1e9:.1f}..{gemm['max'] / 1e9:.1f}) = {bound['limit_ms_per_step']:.3f} ms; "
                   + ", ".join(f"{impl} {r['train']['x_of_limit']:.1f}x" for impl, r in point["impls"].items()))
    return out


def layer_table(report: dict, point: dict) -> list[str]:
    """One point's per-layer profile: forward and backward ms of every layer, per impl, and the ratio to torch
    (the eager impls: a compiled graph has no layers to time one by one)."""
    impls = [impl for impl, result in point["impls"].items() if result["layers"]]
    if not impls:
        return []
    flops = point["bound"]["flops"]["per_layer"]
    others = [impl for impl in impls if impl != "torch"] if "torch" in impls else []
    out = [f"per layer, {point['model']} at batch {point['batch_size']}, ms (median of "
           f"{report['config']['layer_reps']} interleaved rounds; real inputs, backward with a fixed upstream "
           f"gradient; MFLOP fwd/bwd from the shapes):",
           f"{'layer':<12}{'MFLOP':>14}" + "".join(f"{impl + ' fwd':>13}{'bwd':>8}" for impl in impls)
           + "".join(f"{impl + ' x torch':>16}" for impl in others)]

    def ratio_cells(values):
        return "".join(f"{values[impl] / values['torch']:>16.2f}" for impl in others)

    layers = point["impls"][impls[0]]["layers"]
    totals = {impl: [0.0, 0.0] for impl in impls}
    for layer in layers:
        fl = flops.get(layer, {"forward": 0, "backward": 0})
        row = f"{layer:<12}{fl['forward'] / 1e6:>7.2f}/{fl['backward'] / 1e6:<6.2f}"
        sums = {}
        for impl in impls:
            entry = point["impls"][impl]["layers"][layer]
            totals[impl][0] += entry["forward_ms"]
            totals[impl][1] += entry["backward_ms"]
            sums[impl] = entry["forward_ms"] + entry["backward_ms"]
            row += f"{entry['forward_ms']:>13.3f}{entry['backward_ms']:>8.3f}"
        out.append(row + ratio_cells(sums))
    sums = {impl: sum(totals[impl]) for impl in impls}
    out.append(f"{'sum':<12}{'':>14}" + "".join(f"{totals[i][0]:>13.3f}{totals[i][1]:>8.3f}" for i in impls)
               + ratio_cells(sums))
    rest = {impl: point["impls"][impl]["train"]["ms_per_step"]["median"] - sums[impl] for impl in impls}
    out.append(f"{'rest of step':<12}{'':>14}" + "".join(f"{rest[i]:>21.3f}" for i in impls))
    return out


def format_report(report: dict) -> str:
    sections = [header(report), training_table(report), answers(report), ratio_matrix(report), compiled_table(report),
                cost_growth_table(report) if len(report["config"]["batch_sizes"]) > 1 else [],
                warmup_table(report), inference_table(report), memory_table(report), bound_table(report)]
    profiles = [layer_table(report, point) for point in report["points"]]
    text = "\n\n".join("\n".join(section) for section in sections + profiles if section)
    return text + "\n" + LAYER_NOTE if any(profiles) else text


def write_json(report: dict, target: str) -> str | None:
    """Write the report to ``target`` (atomically), or print it for '-'; returns the text when printed."""
    text = json.dumps(report, indent=2) + "\n"
    if target == "-":
        return text
    atomic_write_text(target, text)
    return None
