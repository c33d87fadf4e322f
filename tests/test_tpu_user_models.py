"""A user's own models on the twins: the compiler's split from a log beside the model or --compiler-log, the
modelled allocation otherwise, and what the Edge TPU compiler refuses skipped as inconclusive with its reason
while the A53 twin still answers."""
from support import INFERENCE, load, run_pytest
from tinytflite import dense_tflite

LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 380 ms.

Input model: {name}
Input size: 2.31MiB
Output model: {stem}_edgetpu.tflite
Output size: 2.40MiB
On-chip memory used for caching model parameters: 256.25KiB
On-chip memory remaining for caching model parameters: 7.49MiB
Off-chip memory used for streaming uncached model parameters: 2.00MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 2
Operation log: {stem}_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def test_user_models_on_the_twins(tmp_path):
    logged = dense_tflite(tmp_path / "logged.tflite", [1024, 2048, 4])
    (tmp_path / "logged_edgetpu.log").write_text(LOG.format(name="logged.tflite", stem="logged"))
    modelled = dense_tflite(tmp_path / "modelled.tflite", [1024, 256, 4], float_edges=True)
    flt = dense_tflite(tmp_path / "float.tflite", [64, 32, 4], float_weights=True)
    other = dense_tflite(tmp_path / "other.tflite", [64, 32, 4])
    refused_log = tmp_path / "compile.txt"
    refused_log.write_text("Edge TPU Compiler version 14.1.317412892\nInvalid model: other.tflite\n"
                           "Model not quantized\n")
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, *(f"--model={m}" for m in (logged, modelled, flt, other)),
                      f"--compiler-log={refused_log}", "--device", "tpu-sim,a53-sim", "--results", str(results),
                      "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:]
    entries = {(e["model"]["name"], e["device"]["name"]): e for e in load(results)["entries"]}
    assert set(entries) == {("logged", "tpu-sim"), ("logged", "a53-sim"), ("modelled", "tpu-sim"),
                            ("modelled", "a53-sim"), ("float", "a53-sim"), ("other", "a53-sim")}
    log_entry = entries[("logged", "tpu-sim")]
    assert log_entry["twin"]["compiler_log_used"] is True
    assert log_entry["twin"]["breakdown"]["streamed_bytes"] == 2 * 1024 * 1024
    band = log_entry["latency"]["band"]
    assert band["low"] < band["central"] == log_entry["latency"]["stats"]["median"] < band["high"]
    assert log_entry["energy"]["band_j"] == [log_entry["energy"]["band"]["low"], log_entry["energy"]["band"]["high"]]
    mod = entries[("modelled", "tpu-sim")]["twin"]
    assert mod["compiler_log_used"] is False and mod["breakdown"]["host_ops_s"] > 0
    out = proc.stdout
    assert "float-tpu-sim" in out and "inconclusive: not-testable" in out and "Model not quantized" in out
    assert "its compiler log says so" in out  # other.tflite: the log given with --compiler-log refuses it


def test_a_compiler_log_for_no_model_is_a_usage_error(tmp_path):
    a, b = dense_tflite(tmp_path / "a.tflite", [8, 4]), dense_tflite(tmp_path / "b.tflite", [8, 4])
    logs = []
    for n in ("x", "y", "z"):
        p = tmp_path / f"{n}.log"
        p.write_text(LOG.format(name=f"{n}.tflite", stem=n))
        logs.append(f"--compiler-log={p}")
    proc = run_pytest(INFERENCE, f"--model={a}", f"--model={b}", *logs, "--device", "tpu-sim",
                      "--results", str(tmp_path / "r.json"))
    assert proc.returncode == 4 and "--compiler-log:" in proc.stderr + proc.stdout
