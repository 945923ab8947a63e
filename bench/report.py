"""Writes a run's results: ``latest.json``, ``latest.md`` (Markdown tables) and PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["write", "markdown", "plots"]


def _num(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _stat(stat: dict[str, Any] | None) -> str:
    if not stat:
        return ""
    unit = stat.get("unit", "")
    text = _num(stat["median"], unit)
    if stat.get("n", 1) > 1:
        text += f" ({_num(stat['min'], unit)}–{_num(stat['max'], unit)})"
    return f"{text} {unit}".strip() if unit not in ("x", "count") else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# Benchmark results ({meta['mode']} run)",
        "",
        f"`{meta['command']}` on {meta['started_at']}, {meta['duration_s']:.0f} s.",
        f"Machine: {meta['nproc']} cores, {meta['cpu_model']}; load average "
        f"{meta['loadavg_before'][0]:.2f} before, {meta['loadavg_after'][0]:.2f} after. "
        f"Server: {meta['server']} (no persistence). Python {meta['python']}, redis-py "
        f"{meta['redis_py']}, limits {meta['limits']}. Code: {meta['git']}, "
        f"reserve script sha1 {meta['reserve_sha'][:12]}.",
        "",
        "Every figure: median over repetitions (min–max). Every ratio: computed per "
        "repetition from two measurements taken one right after the other, then summarized.",
        "",
        "## Targets",
        "",
        "| Target | Measured | Met |",
        "| --- | --- | --- |",
    ]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "not judged"}[t["met"]]
        lines.append(f"| {_cell(t['target'])} | {_cell(t['measured'])} | {met} |")
    lines += [
        "",
        "## Summary",
        "",
        "| Scenario | Measure | Median (min–max) | Compared with | Ratio (min–max) | Note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, scenario in results["scenarios"].items():
        title = scenario.get("title", name)
        if "skipped" in scenario:
            lines.append(f"| {title} | skipped | | | | {_cell(scenario['skipped'])} |")
            continue
        if "error" in scenario:
            lines.append(
                f"| {title} | failed | | | | {_cell(scenario['error'].splitlines()[-1])} |"
            )
            continue
        for r in scenario.get("rows", []):
            ratio = _stat(r["ratio"]) + ("x" if r["ratio"] else "")
            lines.append(
                f"| {title} | {_cell(r['measure'])} | {_stat(r['value'])} | "
                f"{_cell(r['vs'] or '')} | {ratio} | {_cell(r['note'])} |"
            )
    if results.get("plots"):
        lines += ["", "## Plots", ""]
        lines += [f"![{p}]({p})" for p in results["plots"]]
    return "\n".join(lines) + "\n"


def plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    """PNG files for the curves; their names (relative to ``out_dir``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    s = results["scenarios"]
    made: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        made.append(name)

    lib = s.get("library", {}).get("processes")
    if lib:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        ns = sorted(lib, key=int)
        for key, label in (
            ("ping_per_s", "PING"),
            ("reserve_per_s", "reserve"),
            ("pipelined_per_s", "pipelined reserve (50 per round trip)"),
        ):
            med = [lib[n][key]["median"] for n in ns]
            err = [
                [m - lib[n][key]["min"] for n, m in zip(ns, med, strict=True)],
                [lib[n][key]["max"] - m for n, m in zip(ns, med, strict=True)],
            ]
            ax.errorbar([int(n) for n in ns], med, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xlabel("processes")
        ax.set_ylabel("calls per second, total")
        ax.set_xticks([int(n) for n in ns])
        ax.set_title("Throughput by process count (2 cores)")
        ax.legend()
        save(fig, "processes.png")

    grow = s.get("growth_orders", {}).get("steps")
    if grow:
        xs = sorted(grow, key=int)
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for key, label in (("reserve_us", "reserve"), ("five_level_us", "five-level floor")):
            ax.errorbar(
                [int(x) for x in xs],
                [grow[x][key]["median"] for x in xs],
                yerr=[
                    [grow[x][key]["median"] - grow[x][key]["min"] for x in xs],
                    [grow[x][key]["max"] - grow[x][key]["median"] for x in xs],
                ],
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("open orders")
        ax.set_ylabel("Redis CPU per call, µs")
        ax2 = ax.twinx()
        ax2.plot(
            [int(x) for x in xs],
            [grow[x]["bytes_per_open_order"] for x in xs],
            "k--",
            marker="s",
            label="bytes per open order",
        )
        ax2.set_ylabel("bytes per open order")
        ax2.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        ax2.legend(loc="lower right")
        ax.set_title("reserve as open orders grow")
        save(fig, "growth_orders.png")

    nodes = s.get("growth_nodes", {}).get("steps")
    if nodes:
        xs = sorted(nodes, key=int)
        fig, ax = plt.subplots(figsize=(6.4, 4))
        nn = [nodes[x]["nodes"] for x in xs]
        for key, label in (("reserve_us", "reserve"), ("five_level_us", "five-level floor")):
            ax.plot(nn, [nodes[x][key]["median"] for x in xs], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("nodes in the policy")
        ax.set_ylabel("Redis CPU per call, µs")
        ax2 = ax.twinx()
        ax2.plot(
            nn,
            [nodes[x]["cold_first_decision_ms"] for x in xs],
            "k--",
            marker="s",
            label="new client's first decision, ms",
        )
        ax2.set_yscale("log")
        ax2.set_ylabel("ms")
        ax.legend(loc="upper left")
        ax2.legend(loc="lower right")
        ax.set_title("reserve as the hierarchy grows")
        save(fig, "growth_nodes.png")

    mem = s.get("limiters", {}).get("memory_bytes_per_node")
    rates = s.get("growth_windows", {}).get("steps")
    if mem or rates:
        fig, axes = plt.subplots(1, 2 if mem and rates else 1, figsize=(10, 4), squeeze=False)
        col = 0
        if mem:
            ax = axes[0][col]
            col += 1
            for key, label in (
                ("ledger", "ledger window"),
                ("moving_window", "limits moving window"),
                ("sliding_window", "limits sliding-window counter"),
            ):
                xs = sorted(mem[key], key=int)
                ax.plot(
                    [int(x) for x in xs], [max(mem[key][x], 1) for x in xs], marker="o", label=label
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("limit, messages per second (window full)")
            ax.set_ylabel("bytes per node")
            ax.set_title("Window memory by limit")
            ax.legend()
        if rates:
            ax = axes[0][col]
            xs = sorted(rates, key=int)
            for key, label in (
                ("ledger_bytes", "ledger window"),
                ("moving_window_bytes", "limits moving window"),
                ("sliding_window_bytes", "limits sliding-window counter"),
            ):
                ax.plot(
                    [int(x) for x in xs],
                    [max(rates[x][key], 1) for x in xs],
                    marker="o",
                    label=label,
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("messages per second")
            ax.set_ylabel("bytes per node")
            ax.set_title("Window memory by message rate")
            ax.legend()
        save(fig, "windows_memory.png")
    return made


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write(results: dict[str, Any], out_dir: Path, with_plots: bool = True) -> list[Path]:
    """Write every output of a run into ``out_dir``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results["plots"] = plots(results, out_dir) if with_plots else []
    json_path = out_dir / "latest.json"
    json_path.write_text(
        json.dumps(_clean(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    md_path = out_dir / "latest.md"
    md_path.write_text(markdown(results), encoding="utf-8")
    return [json_path, md_path] + [out_dir / p for p in results["plots"]]
