"""Checks the validated settings share: a bad value is refused naming its owner, field and rule."""

from contextlib import contextmanager
import math
from typing import Collection, Iterator, Mapping, Tuple

from gps_denied_inference.errors import InvalidValueError

GIB = 1024 ** 3


def require(ok: bool, owner: str, name: str, value: object, rule: str) -> None:
    """Raise InvalidValueError naming `owner.name`, its value and the rule it broke, unless ok.

    An empty `owner` names the setting by `name` alone (a node parameter).
    """
    if not ok:
        raise InvalidValueError(owner, name, value, rule)


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


@contextmanager
def named_as(labels: Mapping[str, str], given: Collection[str]) -> Iterator[None]:
    """Re-raise a refused field among `given` under its label, the name the user wrote.

    That is a node parameter or a command-line flag, not the dataclass that checked it.
    """
    try:
        yield
    except InvalidValueError as err:
        if err.name in given and err.name in labels:
            raise err.renamed(labels[err.name]) from err
        raise
