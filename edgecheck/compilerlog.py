"""Parsing what ``edgetpu_compiler`` prints, for every format real compilers print.

The compiler has no machine-readable output, so this reads its text: versions
2.0 through 16.0, single and co-compiled models ("Models compiled
successfully"), ``--search_delegate`` runs and segmented models, sizes in
B/KiB/MiB/GiB, and the failure outputs, which become a ``CompilerFailure``.
The parsed figures (on-chip and off-chip bytes, subgraphs, operators left on
the CPU) are first-class results.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from edgecheck.errors import EdgecheckError

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = re.compile(r"^\s*([0-9]{1,15}(?:\.[0-9]{1,15})?)\s*(B|KiB|MiB|GiB|KB|MB|GB)\s*$")  # no size overflows
MAPPED = "Mapped to Edge TPU"


def parse_size(text: str) -> int:
    """'4.41MiB' -> bytes (rounded: the compiler prints two decimals)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(round(float(m.group(1)) * _UNITS[m.group(2)]))


@dataclass
class OperatorRow:
    operator: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        return self.status == MAPPED


@dataclass
class CompiledModel:
    input_model: str
    output_model: str | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    on_chip_used_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    on_chip_available_bytes: int | None = None  # compilers 2.0/2.1 print "available" instead of "remaining"
    off_chip_streamed_bytes: int | None = None
    subgraphs: int | None = None
    total_operations: int | None = None
    operations_on_tpu: int | None = None
    operations_on_cpu: int | None = None
    operation_log: str | None = None
    operators: list[OperatorRow] = field(default_factory=list)

    @property
    def unmapped_operators(self) -> list[str]:
        return sorted({r.operator for r in self.operators if not r.mapped})

    @property
    def fully_mapped(self) -> bool | None:
        if self.operations_on_cpu is not None:
            return self.operations_on_cpu == 0
        if self.operators:
            return not self.unmapped_operators
        return None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unmapped_operators"] = self.unmapped_operators
        d["fully_mapped"] = self.fully_mapped
        return d


@dataclass
class CompilerLog:
    compiler_version: str | None
    models: list[CompiledModel]
    compile_ms: int | None = None
    co_compiled: bool = False
    search_delegate_step: int | None = None
    attempts: list[dict] = field(default_factory=list)  # --search_delegate tries: ops, outcome
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"compiler_version": self.compiler_version, "compile_ms": self.compile_ms,
                "co_compiled": self.co_compiled, "search_delegate_step": self.search_delegate_step,
                "attempts": self.attempts, "warnings": self.warnings,
                "models": [m.to_dict() for m in self.models]}


class CompilerFailure(EdgecheckError):
    """The compiler did not produce a model; ``kind`` says why."""

    def __init__(self, kind: str, message: str, version: str | None, details: dict | None = None):
        self.kind, self.version, self.details = kind, version, details or {}
        super().__init__(f"Edge TPU compiler {version or '(version unknown)'}: {message}")


def parse_count(text: str) -> int:
    """A count the compiler prints (operations, subgraphs): a whole number >= 0; '-2' is no count."""
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise ValueError(f"not a count: {text!r}")
    return int(text)


_FIELDS = {
    "Input model": ("input_model", str),
    "Input": ("input_model", str),  # compiler 2.0 without memory report
    "Output model": ("output_model", str),
    "Output": ("output_model", str),
    "Input size": ("input_bytes", parse_size),
    "Output size": ("output_bytes", parse_size),
    "On-chip memory used for caching model parameters": ("on_chip_used_bytes", parse_size),
    "On-chip memory remaining for caching model parameters": ("on_chip_remaining_bytes", parse_size),
    "On-chip memory available for caching model parameters": ("on_chip_available_bytes", parse_size),
    "Off-chip memory used for streaming uncached model parameters": ("off_chip_streamed_bytes", parse_size),
    "Number of Edge TPU subgraphs": ("subgraphs", parse_count),
    "Total number of operations": ("total_operations", parse_count),
    "Number of operations that will run on Edge TPU": ("operations_on_tpu", parse_count),
    "Number of operations that will run on CPU": ("operations_on_cpu", parse_count),
    "Operation log": ("operation_log", str),
}
_ROW = re.compile(r"^([A-Za-z0-9_\-]+)\s+(\d{1,9})\s+(\S.*?)\s*$")  # counts of at most 9 digits: never huge
_VERSION = re.compile(r"Edge TPU Compiler version (\S+)")
_COMPILED = re.compile(r"Models? compiled successfully in (\d{1,12}) ms")
_SEARCH = re.compile(r"Searching for valid delegate with step (\d{1,9})")
_TRY = re.compile(r"Try to compile segment with (\d{1,9}) ops")
_OPCODE = re.compile(r"Didn't find op for builtin opcode '([^']+)' version '(\d{1,9})'")


def parse(text: str, source: str = "compiler log") -> CompilerLog:
    """Parse compiler output; raise ``CompilerFailure`` when it produced no model."""
    version = (_VERSION.search(text) or [None, None])[1]
    lines = text.replace("\r\n", "\n").split("\n")
    log = CompilerLog(compiler_version=version, models=[])
    cur: CompiledModel | None = None
    in_table = False
    failures: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if m := _COMPILED.search(line):
            log.compile_ms = int(m.group(1))
            log.co_compiled = line.startswith("Models ")
        if m := _SEARCH.search(line):
            log.search_delegate_step = int(m.group(1))
        if m := _TRY.search(line):
            log.attempts.append({"operations": int(m.group(1)), "outcome": "pending"})
        if line.startswith("Compilation failed") or line == "Internal compiler error. Aborting!":
            failures.append(line)
            if log.attempts and log.attempts[-1]["outcome"] == "pending":
                log.attempts[-1]["outcome"] = "failed"
        if line.startswith("Operator") and "Count" in line and "Status" in line:
            in_table = True
            continue
        if in_table:
            if m := _ROW.match(line):
                if cur is None:
                    raise EdgecheckError(f"{source}: operator table before any model")
                cur.operators.append(OperatorRow(m.group(1), int(m.group(2)), m.group(3)))
                continue
            in_table = False
        key, sep, value = line.partition(":")
        if sep and key in _FIELDS:
            name, conv = _FIELDS[key]
            value = value.strip()
            if name == "input_model":
                cur = CompiledModel(input_model=value)
                log.models.append(cur)
                if log.attempts and log.attempts[-1]["outcome"] in ("pending", "failed"):
                    log.attempts[-1]["outcome"] = "compiled"
                continue
            if cur is None:
                raise EdgecheckError(f"{source}: {key!r} before any 'Input model' line")
            try:
                setattr(cur, name, conv(value))
            except ValueError:
                raise EdgecheckError(f"{source}: cannot read {key!r} value {value!r}") from None
    if not log.models:
        raise _failure(text, version, failures, source)
    for mdl in log.models:
        if None not in (mdl.total_operations, mdl.operations_on_tpu, mdl.operations_on_cpu) \
                and mdl.operations_on_tpu + mdl.operations_on_cpu > mdl.total_operations:
            raise EdgecheckError(f"{source}: {mdl.input_model}: {mdl.operations_on_tpu} operations on the Edge TPU and "
                                 f"{mdl.operations_on_cpu} on the CPU exceed the {mdl.total_operations} in total")
        if mdl.on_chip_remaining_bytes is None and mdl.on_chip_available_bytes is not None \
                and mdl.on_chip_used_bytes is not None:
            mdl.on_chip_remaining_bytes = mdl.on_chip_available_bytes - mdl.on_chip_used_bytes
        if mdl.operations_on_tpu is None and mdl.total_operations is not None and mdl.subgraphs is not None \
                and not mdl.operators and "not all operations are supported" not in text:
            # "See the operation log file" without the partial-mapping notice: everything mapped
            mdl.operations_on_tpu, mdl.operations_on_cpu = mdl.total_operations, 0
        if mdl.operations_on_tpu is None and mdl.operators:
            mdl.operations_on_tpu = sum(r.count for r in mdl.operators if r.mapped)
            mdl.operations_on_cpu = sum(r.count for r in mdl.operators if not r.mapped)
        if mdl.unmapped_operators:
            log.warnings.append(f"{mdl.input_model}: not fully mapped to the Edge TPU; on the CPU: "
                                f"{', '.join(mdl.unmapped_operators)}")
    return log


def _failure(text: str, version: str | None, failures: list[str], source: str) -> CompilerFailure:
    if "Model not quantized" in text:
        return CompilerFailure("not_quantized", f"{source}: model not quantized (the compiler needs a full-int8 model)",
                               version)
    if m := _OPCODE.search(text):
        return CompilerFailure(
            "unsupported_operator_version",
            f"{source}: operator {m.group(1)} version {m.group(2)} is newer than this compiler knows; "
            "convert with an older TensorFlow or experimental_new_converter=False",
            version, {"operator": m.group(1), "version": int(m.group(2))})
    if "Internal compiler error" in text:
        return CompilerFailure("internal_error", f"{source}: internal compiler error", version)
    for line in failures:
        if line.startswith("Compilation failed:"):
            return CompilerFailure("compilation_failed", f"{source}: {line}", version)
    if failures:
        return CompilerFailure("compilation_failed", f"{source}: compilation failed", version)
    if version is None:
        return CompilerFailure("not_a_log", f"{source}: not Edge TPU compiler output (no version line)", None)
    return CompilerFailure("no_model", f"{source}: the compiler reported no compiled model", version)
