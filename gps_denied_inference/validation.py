"""Checks the validated settings share: a bad value is refused naming its owner, field and rule."""

import math
from typing import Tuple

from gps_denied_inference.errors import ConfigError

GIB = 1024 ** 3


def require(ok: bool, owner: str, name: str, value: object, rule: str) -> None:
    """Raise ConfigError naming `owner.name`, its value and the rule it broke, unless ok."""
    if not ok:
        raise ConfigError(f'{owner}.{name} = {value!r} is invalid: must be {rule}')


def positive_int(owner: str, name: str, value: object) -> None:
    """Refuse anything but an integer > 0 (bools included)."""
    require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
            owner, name, value, 'an integer > 0')


def positive_number(owner: str, name: str, value: object) -> None:
    """Refuse anything but a finite number > 0."""
    require(isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0, owner, name, value, 'a finite number > 0')


def one_of(owner: str, name: str, value: object, allowed: Tuple[str, ...]) -> None:
    """Refuse a value outside the allowed choices, listing them."""
    require(value in allowed, owner, name, value, 'one of ' + ', '.join(allowed))
