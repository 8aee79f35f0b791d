"""One exception hierarchy for the package: every refusal names what was refused and why."""

from typing import Optional


class GpsDeniedInferenceError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(GpsDeniedInferenceError):
    """A configuration value (parameter, build config, dataclass field) is invalid."""


class InvalidValueError(ConfigError):
    """One named setting has a value its rule refuses; callers may name it as the user wrote it."""

    def __init__(self, owner: str, name: str, value: object, rule: str,
                 label: Optional[str] = None) -> None:
        self.owner = owner
        self.name = name
        self.value = value
        self.rule = rule
        label = label or (f'{owner}.{name}' if owner else name)
        super().__init__(f'{label} = {value!r} is invalid: must be {rule}')

    def renamed(self, label: str) -> 'InvalidValueError':
        """The same refusal under the name the user gave the setting (a parameter, a flag)."""
        return InvalidValueError(self.owner, self.name, self.value, self.rule, label=label)


class RuntimeUnavailableError(ConfigError):
    """An inference strategy was asked for that is unknown or whose library is not installed."""


class EngineGateError(GpsDeniedInferenceError):
    """A model artifact failed a gate check; nothing was loaded."""

    def __init__(self, path: str, check: str, expected: object, found: object,
                 detail: Optional[str] = None) -> None:
        self.path = str(path)
        self.check = check
        self.expected = expected
        self.found = found
        message = f'{self.path}: {check} check failed: expected {expected}, found {found}'
        if detail:
            message += f' ({detail})'
        super().__init__(message)


class EngineLoadError(GpsDeniedInferenceError):
    """A gated artifact could not be loaded by its runtime (a refusal, not a fault)."""


class EngineBuildError(GpsDeniedInferenceError):
    """Compiling an engine failed; no partial engine or sidecar was left behind."""


class CalibrationCacheError(GpsDeniedInferenceError):
    """An INT8 calibration cache or its dataset cannot be trusted."""


class OutOfMemoryError(GpsDeniedInferenceError):
    """A reservation was refused because it would exceed a memory budget; nothing was allocated."""

    def __init__(self, pool: str, name: str, requested: int, resident: int,
                 budget: int) -> None:
        self.pool = pool
        self.name = name
        self.requested = requested
        self.resident = resident
        self.budget = budget
        super().__init__(
            f'{pool} memory budget refused {name!r}: requested {requested} B, '
            f'resident {resident} B, budget {budget} B '
            f'(short by {resident + requested - budget} B)')


class InferenceError(GpsDeniedInferenceError):
    """One inference call failed; the cause is kept as __cause__."""


class ImageRejectedError(GpsDeniedInferenceError):
    """An input image message cannot be decoded (encoding, size or step disagree)."""


class ManifestError(GpsDeniedInferenceError):
    """A manifest or sha256 sidecar is malformed (the gate reports it as a refusal)."""


class CameraInfoError(GpsDeniedInferenceError):
    """A CameraInfo gives no intrinsics for a frame: uncalibrated, malformed, or another size."""
