"""The inference strategies by label, and the budgets and limits every strategy obeys."""

from dataclasses import dataclass

from gps_denied_inference.validation import GIB, positive_int, positive_number

RUNTIME_LABELS = ('tensorrt', 'onnxruntime')


@dataclass(frozen=True)
class RuntimeConfig:
    """Budgets and limits every inference strategy obeys."""

    gpu_memory_budget_bytes: int = 4 * GIB
    host_memory_budget_bytes: int = 3 * GIB // 2
    trtexec_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        positive_int('RuntimeConfig', 'gpu_memory_budget_bytes', self.gpu_memory_budget_bytes)
        positive_int('RuntimeConfig', 'host_memory_budget_bytes',
                     self.host_memory_budget_bytes)
        positive_number('RuntimeConfig', 'trtexec_timeout_s', self.trtexec_timeout_s)
