"""Fitting the twins' constants to measurements.

- the Edge TPU twin's constants and band from published latencies: ``tpufit``
  (``published_tpu_latency.json``); from a user's board: ``fit_board(..., TPU)``.
- ``fit_cpu_form``: the evidence that the CPU form (invoke and per-operator
  overhead, L2 and memory rates, the L2's hits and misses from its geometry)
  fits real measurements: fitted on models of at most 1 M parameters, scored
  on the larger ones (extrapolation).
- ``fit_board``: A53 and TPU constants from results measured on a Coral board,
  written as a new constants file (kind "fitted", source the results' sha256).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.files import sha256_file
from edgecheck.modelfile import DenseLayer
from edgecheck.results import Entry, Run
from edgecheck.twins import allocation
from edgecheck.twins.cache import CacheGeometry, miss_fraction
from edgecheck.twins.model import Constants, Workload, predict_a53, workload_from_sizes
from edgecheck.twins.sections import A53, TPU, TPU_HOSTS
from edgecheck.twins.tpufit import TpuPoint, conformal_fit, nnls

TWIN_FORM_LIMIT_PCT = 25.0  # held-out median error the twins' form aims for on a measured CPU


def _relative_fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimizing relative (not absolute) squared error."""
    w = 1.0 / y
    return nnls(X * w[:, None], y * w)


def mdape(pred: np.ndarray, y: np.ndarray) -> float:
    """Median absolute percentage error."""
    return float(np.median(np.abs(pred - y) / y) * 100) if len(y) else float("nan")


# ----------------------------------------------------------------------------
# Host CPU: does the form fit?
# ----------------------------------------------------------------------------


def cpu_points(results: list[Run | dict], device: str) -> list[dict]:
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


def form_summary(device: str, fit: dict) -> str:
    """The twins' form on a measured CPU in one line: the held-out median error and the worst model beside it,
    so a median never hides a model far off; or why the form was not fitted there."""
    if "not_fitted" in fit:
        return f"informational: the twins' form was not fitted on {device}: {fit['not_fitted']}"
    held = fit["held_out"]
    worst = max(held, key=lambda h: abs(h["error_pct"])) if held else None
    return (f"informational, measured on {device}: the twins' form fitted on {len(fit['fitted_on'])} models of "
            f"<= 1 M parameters predicts the {len(held)} larger ones with a median error of "
            f"{fit['held_out_mdape_pct']:.1f} %"
            + (f" (worst: {worst['model']} {worst['error_pct']:+.1f} %)" if worst else "")
            + f"; the twins aim for <= {fit['limit_pct']:g} % (per-model errors: edgecheck calibrate --device "
              f"{device})")


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


def fit_board(results: list[dict], results_paths: list[str], base: Constants, device: str,
              host: str | None = None) -> tuple[dict, dict]:
    """New constants for the a53 or tpu twin from board measurements; returns (constants, report). ``host``
    (tpu): the host class whose part of the invoke overhead the board's runs set."""
    src = "edgecheck calibrate on " + ", ".join(f"{Path(p).name} (sha256 {sha256_file(p)[:12]})" for p in results_paths)
    out = copy.deepcopy(base.data)
    if device == TPU:
        return _fit_tpu(results, src, base, out, host)
    if device == A53:
        es = _entries(results, A53)
        threads = es[0].device.threads or 1
        pts = cpu_points(results, A53)
        y = np.array([p["latency_s"] for p in pts])
        workloads = [point_workload(p) for p in pts]
        X = np.c_[np.ones_like(y), [p["ops"] for p in pts]]
        best = None
        for mpc in np.linspace(0.5, 8, 31):
            for dram in np.logspace(8.7, 10.3, 33):
                trial = copy.deepcopy(out)
                _set(trial, (A53, "macs_per_cycle"), float(mpc), src)
                _set(trial, (A53, "dram_Bps_per_core"), float(dram), src)
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
        _set(out, (A53, "macs_per_cycle"), float(mpc), src)
        _set(out, (A53, "dram_Bps_per_core"), float(dram), src)
        _set(out, (A53, "invoke_overhead_s"), float(coef[0]), src)
        _set(out, (A53, "op_overhead_s"), float(coef[1]), src)
        return out, {"device": A53, "macs_per_cycle": float(mpc), "dram_Bps_per_core": float(dram),
                     "invoke_overhead_s": float(coef[0]), "op_overhead_s": float(coef[1]), "mape_pct": err}
    raise EdgecheckError(f"calibrate: --device must be cpu, a53 or tpu, got {device!r}")


def _board_link(meta: dict) -> str:
    link = meta.get("connection", "pcie")
    return "pcie" if link == "pci" else ("usb3" if "USB 3" in str(meta.get("usb_speed")) else
                                         "usb2" if link == "usb" else link)


def _streamed(e: Entry, base: Constants) -> tuple[int, str]:
    """Off-chip bytes of a measured model: its compiler log's, else the modelled allocation of its layer sizes."""
    comp = (e.model.compiler or {}).get("models") or []
    if comp and comp[0].get("off_chip_streamed_bytes") is not None:
        return sum(m.get("off_chip_streamed_bytes") or 0 for m in comp), "compiler log"
    w = workload_from_sizes(e.model.size.get("layer_sizes") or [],
                            f"calibrate: {e.model.name} (no compiler log, no layer sizes)")
    return allocation.split(w.param_layers(), base).central.streamed_bytes, "modelled allocation"


def _fit_tpu(results: list[dict], src: str, base: Constants, out: dict, host: str | None = None
             ) -> tuple[dict, dict]:
    """The Edge TPU twin's constants for this board's link from its measured latencies and compiler logs, with a
    band from the fit's own held-out errors (``tpufit.conformal_fit``).

    The fit's intercept (latency at zero MACs, cached and streamed together) is the whole invoke overhead, host
    + device; the link's device part stays the published one and the host's part is the rest. A board faster
    than the device part lowers the device part to its intercept (the host part is then 0)."""
    from edgecheck.twins.model import check_tpu_host

    es = _entries(results, TPU)
    link = _board_link(es[0].device.metadata or {})
    if link not in ("pcie", "usb3", "usb2"):
        raise EdgecheckError(f"calibrate --device tpu: cannot tell the board's link from the results ({link!r})")
    host = check_tpu_host(host) or ("coral-dev-board" if link == "pcie" else None)
    if host is None:
        raise EdgecheckError(f"calibrate --device tpu: the board's Edge TPU is on {link}; name its host with "
                             f"--tpu-host ({', '.join(TPU_HOSTS)})")
    clock = float(base.value(TPU, "clock_hz"))
    s_prior = 1.0 / (base.value(TPU, "matvec_utilization") * base.value(TPU, "mac_array") * clock)
    points, split_from = [], {}
    for e in es:
        streamed, how = _streamed(e, base)
        sizes = e.model.size.get("layer_sizes") or []
        io = (sizes[0] + sizes[-1]) if sizes else 0
        points.append(TpuPoint("board", 1, link, int(e.model.size.get("macs") or 0), int(streamed),
                               float(e.latency.median), io, e.model.name))
        split_from[e.model.name] = how
    fit, margin, report = conformal_fit(points, s_prior, base.value(TPU, "links", link, "rate_Bps"))
    m = min(margin, 0.9)
    band_src = f"{src}; range: the fit's held-out error, 80th percentile {margin * 100:.1f} %"

    def put(keys: tuple, value: float, lo: float, hi: float) -> None:
        _set(out, keys, value, band_src)
        node = out
        for k in keys:
            node = node[k]
        node.update(low=lo, high=hi, confidence="medium")

    overhead = fit[("overhead_s", link)]
    device_s = min(float(base.value(TPU, "links", link, "overhead_s")), overhead)
    host_s = overhead - device_s
    if device_s < base.value(TPU, "links", link, "overhead_s"):
        put((TPU, "links", link, "overhead_s"), device_s, device_s, device_s)
    put((TPU, "hosts", host, "overhead_s"), host_s, max(0.0, host_s - overhead * m), host_s + overhead * m)
    if ("rate_Bps", link) in fit:
        r = fit[("rate_Bps", link)]
        put((TPU, "links", link, "rate_Bps"), r, r / (1 + m), r / (1 - m))
    if ("stream_overhead_s", link) in fit:
        so = fit[("stream_overhead_s", link)]
        put((TPU, "links", link, "stream_overhead_s"), so, so * (1 - m), so * (1 + m))
    if ("s_per_mac", None) in fit and fit[("s_per_mac", None)] > 0:
        util = 1.0 / (fit[("s_per_mac", None)] * base.value(TPU, "mac_array") * clock)
        put((TPU, "matvec_utilization"), util, util / (1 + m), util / (1 - m))
    for regime in ("cached", "streamed"):  # the margin is in the ranges now
        _set(out, (TPU, "band", f"{regime}_margin"), 0.0, f"{src}: folded into the fitted ranges")
    fitted = {"overhead_s": overhead, "host": host, "host_overhead_s": host_s, "device_overhead_s": device_s,
              "rate_Bps": fit.get(("rate_Bps", link)),
              "stream_overhead_s": fit.get(("stream_overhead_s", link)), "s_per_mac": fit.get(("s_per_mac", None))}
    return out, {"device": TPU, "link": link, **fitted, "split_from": split_from, "held_out": report}
