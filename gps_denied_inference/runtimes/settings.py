"""The inference strategies by label, and the budgets and limits every strategy obeys."""

from dataclasses import dataclass

from gps_denied_inference.validation import GIB, positive_int, positive_number, require

RUNTIME_LABELS = ('tensorrt', 'onnxruntime')
MIB = 1 << 20
# What a CUDA context and TensorRT's runtime hold besides an engine's own memory: a
# conservative default for Jetson Orin with lazy module loading (docs/tensorrt.md says how
# to measure it on the drone and set the node parameter to the measured value).
CUDA_CONTEXT_OVERHEAD_BYTES = 512 * MIB


@dataclass(frozen=True)
class RuntimeConfig:
    """Budgets and limits every inference strategy obeys."""

    gpu_memory_budget_bytes: int = 4 * GIB
    host_memory_budget_bytes: int = 3 * GIB // 2
    trtexec_timeout_s: float = 600.0
    cuda_context_overhead_bytes: int = CUDA_CONTEXT_OVERHEAD_BYTES

    def __post_init__(self) -> None:
        positive_int('RuntimeConfig', 'gpu_memory_budget_bytes', self.gpu_memory_budget_bytes)
        positive_int('RuntimeConfig', 'host_memory_budget_bytes',
                     self.host_memory_budget_bytes)
        positive_number('RuntimeConfig', 'trtexec_timeout_s', self.trtexec_timeout_s)
        value = self.cuda_context_overhead_bytes
        require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                'RuntimeConfig', 'cuda_context_overhead_bytes', value, 'an integer >= 0')
