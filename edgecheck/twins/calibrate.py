"""Fitting the twins' constants to measurements.

- ``fit_links``: the Edge TPU twin's invoke overhead and link rate per link, by
  least squares on published latencies (``published_tpu_latency.json``).
- ``fit_cpu_form``: the evidence that the CPU form (invoke and per-operator
  overhead, L2 and memory rates, the L2's hits and misses from its geometry)
  fits real measurements: fitted on models of at most 1 M parameters, scored
  on the larger ones (extrapolation).
- ``fit_board``: A53 and TPU constants from results measured on a Coral board,
  written as a new constants file (kind "fitted", source the results' sha256).
"""
from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json, sha256_file
from edgecheck.modelfile import DenseLayer
from edgecheck.results import Entry, Run
from edgecheck.twins.cache import CacheGeometry, miss_fraction
from edgecheck.twins.model import Constants, Workload, cache_split, predict_a53, workload_from_sizes

PUBLISHED = Path(__file__).with_name("published_tpu_latency.json")
TWIN_FORM_LIMIT_PCT = 25.0  # held-out median error the twins' form aims for on a measured CPU


def published_rows() -> list[dict]:
    return load_json(PUBLISHED, "edgecheck.published-latency/1", "published latencies")["rows"]


def nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a handful of columns: the best feasible subset solution."""
    best, best_err = np.zeros(A.shape[1]), float(np.sum(b**2))
    for k in range(1, A.shape[1] + 1):
        for cols in itertools.combinations(range(A.shape[1]), k):
            x, *_ = np.linalg.lstsq(A[:, cols], b, rcond=None)
            if np.any(x < 0):
                continue
            err = float(np.sum((A[:, cols] @ x - b) ** 2))
            if err < best_err:
                best, best_err = np.zeros(A.shape[1]), err
                best[list(cols)] = x
    return best


def _relative_fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimizing relative (not absolute) squared error."""
    w = 1.0 / y
    return nnls(X * w[:, None], y * w)


def mdape(pred: np.ndarray, y: np.ndarray) -> float:
    """Median absolute percentage error."""
    return float(np.median(np.abs(pred - y) / y) * 100) if len(y) else float("nan")


def fit_links(rows: list[dict]) -> dict:
    """Per link: latency = overhead + streamed bytes / rate, relative least squares."""
    out = {}
    for link in sorted({r["link"] for r in rows}):
        sel = [r for r in rows if r["link"] == link]
        x = np.array([r["streamed_bytes"] for r in sel], float)
        y = np.array([r["latency_s"] for r in sel], float)
        coef = _relative_fit(np.c_[np.ones_like(x), x], y)
        if coef[1] <= 0:
            raise EdgecheckError(f"link {link}: the published rows do not determine a transfer rate")
        pred = coef[0] + coef[1] * x
        out[link] = {"overhead_s": float(coef[0]), "rate_Bps": float(1 / coef[1]), "rows": len(sel),
                     "residuals_pct": [round(float(v), 1) for v in (pred - y) / y * 100],
                     "median_abs_pct_error": mdape(pred, y)}
    return out


# ----------------------------------------------------------------------------
# Host CPU: does the form fit?
# ----------------------------------------------------------------------------


def cpu_points(results: list[Run | dict], device: str = "cpu") -> list[dict]:
    """(params, macs, bytes, ops, latency) of every ok measured entry of ``device``."""
    pts = []
    for e in _entries(results, device):
        s = e.model.size
        n_layers = max(1, len(s.get("layer_sizes") or [0, 0]) - 1)
        pts.append({"model": e.model.name, "params": s["params"], "macs": s["macs"],
                    "bytes": s["weight_bytes"] + s["bias_bytes"], "ops": n_layers, "latency_s": e.latency.median})
    return sorted(pts, key=lambda p: p["params"])


def point_workload(p: dict) -> Workload:
    """A measured point as the twins' workload: the a53 form needs only MACs, parameter bytes and operators."""
    return Workload([DenseLayer(1, 1, p["macs"], p["bytes"] - p["macs"], p["macs"], "int8", "per-tensor", 0, 0)],
                    p["ops"], p["model"])


def fit_cpu_form(points: list[dict], cache: CacheGeometry, max_train_params: int = 1_000_000) -> dict:
    """latency = invoke + ops x per-op + L2-hit bytes / L2 rate + missed bytes / memory rate.

    The weights' split between hits and misses comes from the cache's geometry
    (``cache.miss_fraction``), not from the fit. There is no separate compute
    term: an int8 dense layer at batch 1 does one MAC per weight byte, so
    compute and streaming from L2 cannot be told apart and the L2 rate holds
    both. Fitted on models of at most ``max_train_params``; the error on the
    larger ones is extrapolation."""
    params = np.array([p["params"] for p in points], float)
    nbytes = np.array([p["bytes"] for p in points], float)
    ops = np.array([p["ops"] for p in points], float)
    y = np.array([p["latency_s"] for p in points], float)
    miss = np.array([miss_fraction(b, cache) for b in nbytes])
    X = np.c_[np.ones_like(y), ops, nbytes * (1 - miss), nbytes * miss]
    train = params <= max_train_params
    if train.sum() < 5 or (~train).sum() < 1:
        raise EdgecheckError(f"calibrate: need >= 5 models of at most {max_train_params} parameters and one larger "
                             f"(have {int(train.sum())} and {int((~train).sum())})")
    if (nbytes[train] * miss[train]).max() < 0.1 * nbytes[train].max():
        raise EdgecheckError(f"calibrate: no model of at most {max_train_params} parameters spills out of the "
                             f"{cache.size_bytes >> 10} KiB L{cache.level} cache, so the memory rate beyond it "
                             "cannot be fitted; add larger models to the sweep")
    coef = _relative_fit(X[train], y[train])
    if coef[2] <= 0 or coef[3] <= 0:
        raise EdgecheckError("calibrate: the fit put no time on reading the weights; are these latencies of dense "
                             "models?")
    pred = X @ coef
    held = ~train
    return {
        "form": "invoke + ops*op_overhead + bytes*(1-miss)/l2_rate + bytes*miss/memory_rate",
        "cache": cache.to_dict(),
        "invoke_overhead_s": float(coef[0]), "op_overhead_s": float(coef[1]),
        "l2_rate_Bps": float(1 / coef[2]), "memory_rate_Bps": float(1 / coef[3]),
        "miss_fraction": {p["model"]: float(m) for p, m in zip(points, miss)},
        "fitted_on": [p["model"] for p, t in zip(points, train) if t],
        "held_out": [{"model": p["model"], "params": p["params"], "measured_s": p["latency_s"],
                      "predicted_s": float(q), "error_pct": float((q - p["latency_s"]) / p["latency_s"] * 100)}
                     for p, q, h in zip(points, pred, held) if h],
        "train_mdape_pct": mdape(pred[train], y[train]),
        "held_out_mdape_pct": mdape(pred[held], y[held]),
    }


# ----------------------------------------------------------------------------
# Board measurements -> fitted twin constants
# ----------------------------------------------------------------------------


def _entries(results: list[Run | dict], device: str) -> list[Entry]:
    out = [e for d in results for e in Run.coerce(d).ok_entries() if e.device.name == device and e.latency]
    if not out:
        raise EdgecheckError(f"calibrate: no measured {device} entries in the results given")
    return out


def _set(c: dict, keys: tuple[str, ...], value: float, source: str) -> None:
    node = c
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = {"value": value, "kind": "fitted", "source": source}


def fit_board(results: list[dict], results_paths: list[str], base: Constants, device: str) -> tuple[dict, dict]:
    """New constants for the a53 or tpu twin from board measurements; returns (constants, report)."""
    src = "edgecheck calibrate on " + ", ".join(f"{Path(p).name} (sha256 {sha256_file(p)[:12]})" for p in results_paths)
    out = copy.deepcopy(base.data)
    if device == "tpu":
        es = _entries(results, "tpu")
        meta = es[0].device.metadata or {}
        link = meta.get("connection", "pcie")
        link = "pcie" if link == "pci" else ("usb3" if "USB 3" in str(meta.get("usb_speed")) else
                                             "usb2" if link == "usb" else link)
        rows = []
        for e in es:
            comp = (e.model.compiler or {}).get("models") or []
            if comp and comp[0].get("off_chip_streamed_bytes") is not None:
                streamed = sum(m.get("off_chip_streamed_bytes") or 0 for m in comp)
            else:  # no compiler log: fill the cache layer by layer from the model's recorded layer sizes
                sizes = e.model.size.get("layer_sizes") or []
                w = workload_from_sizes(sizes, f"calibrate: {e.model.name} (no compiler log, no layer sizes)")
                streamed = cache_split(w.layers, base.value("tpu", "cache_bytes"))[1]
            rows.append({"link": link, "streamed_bytes": streamed, "latency_s": e.latency.median})
        fit = fit_links(rows)[link]
        _set(out, ("tpu", "links", link, "overhead_s"), fit["overhead_s"], src)
        _set(out, ("tpu", "links", link, "rate_Bps"), fit["rate_Bps"], src)
        return out, {"device": "tpu", "link": link, **fit}
    if device == "a53":
        es = _entries(results, "a53")
        threads = es[0].device.threads or 1
        pts = cpu_points(results, "a53")
        y = np.array([p["latency_s"] for p in pts])
        workloads = [point_workload(p) for p in pts]
        X = np.c_[np.ones_like(y), [p["ops"] for p in pts]]
        best = None
        for mpc in np.linspace(0.5, 8, 31):
            for dram in np.logspace(8.7, 10.3, 33):
                trial = copy.deepcopy(out)
                _set(trial, ("a53", "macs_per_cycle"), float(mpc), src)
                _set(trial, ("a53", "dram_Bps_per_core"), float(dram), src)
                c = Constants(trial, "trial", "trial")
                # the larger of compute and weight traffic; the overheads are fitted below
                body = np.array([pr.latency_s - pr.breakdown["overhead_s"]
                                 for pr in (predict_a53(w, c, threads) for w in workloads)])
                coef = nnls(X / y[:, None], (y - body) / y)  # relative error of the whole latency
                pred = X @ coef + body
                err = float(np.mean(np.abs(pred - y) / y) * 100)  # mean, so every model counts in the choice
                if best is None or err < best[0]:
                    best = (err, mpc, dram, coef)
        err, mpc, dram, coef = best
        _set(out, ("a53", "macs_per_cycle"), float(mpc), src)
        _set(out, ("a53", "dram_Bps_per_core"), float(dram), src)
        _set(out, ("a53", "invoke_overhead_s"), float(coef[0]), src)
        _set(out, ("a53", "op_overhead_s"), float(coef[1]), src)
        return out, {"device": "a53", "macs_per_cycle": float(mpc), "dram_Bps_per_core": float(dram),
                     "invoke_overhead_s": float(coef[0]), "op_overhead_s": float(coef[1]), "mape_pct": err}
    raise EdgecheckError(f"calibrate: --device must be cpu, a53 or tpu, got {device!r}")
