"""Which CPU this is, as far as trained numbers are concerned.

oneDNN picks its kernels by CPU, so the same seeded fit can end a few units of the last digit
apart on two CPUs (findings #23). A host is its model name and, where known, the features that
pick those kernels: ``"AMD EPYC (family 25 model 1, avx2)"``. Records written before the
features were kept name the model only; :func:`same_host` then compares names.
"""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _first_cpu(cpuinfo: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def describe(cpuinfo: str | None = None) -> tuple[str, str]:
    """(model name, kernel features) of the first CPU in ``cpuinfo`` (default: /proc/cpuinfo);
    ("unknown", "") where it cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            return "unknown", ""
    fields = _first_cpu(cpuinfo)
    name = fields.get("model name", "unknown")
    if "cpu family" not in fields:
        return name, ""
    flags = set(fields.get("flags", "").split())
    isa = next((level for level in ("avx512f", "avx2", "avx") if level in flags), "sse")
    return name, f"family {fields['cpu family']} model {fields.get('model', '?')}, {isa.removesuffix('f')}"


def label(name: str, features: str = "") -> str:
    """``name (features)``, or the name alone when the features are unknown."""
    return f"{name} ({features})" if features else name


def this_host() -> str:
    return label(*describe())


def same_host(first: str, second: str) -> bool:
    """Whether two host labels name the same CPU: equal names, and equal features where both
    labels have them (a label without features is the other's name alone)."""
    return first == second or first.startswith(f"{second} (") or second.startswith(f"{first} (")
