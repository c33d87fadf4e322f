"""What a measurement is asked to do: timing and energy options, plain values shared by the recorder, the
local and remote paths and the energy step (below all of them, so none imports another for them)."""
from __future__ import annotations

from dataclasses import dataclass

from edgecheck.config import DEFAULTS


@dataclass(frozen=True)
class TimingOptions:
    processes: int = DEFAULTS.processes
    rounds: int = DEFAULTS.rounds  # per process
    warmup_rounds: int = DEFAULTS.warmup_rounds
    round_seconds: float = DEFAULTS.round_seconds
    calibration_seconds: float = DEFAULTS.calibration_seconds
    # a model stops after this many processes once its interval is within target_ci; ``processes`` turns the
    # early stop off (a comparison with a baseline needs the baseline's number of processes for its power)
    min_processes: int = DEFAULTS.min_processes
    max_extra_processes: int = DEFAULTS.max_extra_processes
    target_ci: float = DEFAULTS.target_ci
    adaptive_budget: float = DEFAULTS.adaptive_budget
    in_process_rounds: int = DEFAULTS.in_process_rounds
    seed: int = 0
    count_instructions: bool = False  # --count-instructions: each model's invokes counted under Valgrind too
    count_invokes: int = 20  # invokes per counted block (two blocks): counts are deterministic, few suffice
    count_cache_sim: bool = True  # simulated last-level misses beside the instructions (about 2x the cost)

    @property
    def count_job(self) -> dict | None:
        """The worker's counting job (``worker.count_instructions``), or None when not asked for."""
        if not self.count_instructions:
            return None
        return {"tool": "callgrind", "invokes": self.count_invokes, "cache_sim": self.count_cache_sim}


@dataclass(frozen=True)
class EnergyOptions:
    probe: object  # a probe from probes.open_probe, "model", or None when it runs on the boards only
    window_seconds: float = DEFAULTS.energy_window_seconds
    windows: int = DEFAULTS.energy_windows
    idle_seconds: float = DEFAULTS.idle_seconds
    spec: str | None = None  # --energy-probe as given: a board's worker opens hwmon probes on the board
    constants: object = None  # the session's twin constants: the ``model`` probe's power model comes from them

    @property
    def on_board(self) -> dict | None:
        """The worker's energy job, when this probe can run on a remote board (a hwmon sensor there)."""
        from edgecheck.measure.probes import runs_on_board

        if not self.spec or not runs_on_board(self.spec):
            return None
        return {"probe": self.spec, "idle_seconds": self.idle_seconds, "window_seconds": self.window_seconds,
                "windows": self.windows}


__all__ = ["TimingOptions", "EnergyOptions"]
