"""The bond with nav2's lifecycle manager, on the fake bondpy (test/fakes/bondpy)."""

import sys

from fakes.bondpy import bondpy as fake_bondpy
from node_harness import model_parameters
import pytest

from gps_denied_inference.node.bond import LifecycleBond


@pytest.fixture
def bonds(monkeypatch):
    """Install the fake bondpy; yields the list of every Bond created."""
    import fakes.bondpy

    monkeypatch.setitem(sys.modules, 'bondpy', fakes.bondpy)
    monkeypatch.setitem(sys.modules, 'bondpy.bondpy', fake_bondpy)
    monkeypatch.setattr(fake_bondpy, 'BONDS', [])
    return fake_bondpy.BONDS


class _Node:
    def __init__(self):
        self.logged = []

    def get_name(self):
        return 'inference'

    def get_logger(self):
        return self

    def info(self, message):
        self.logged.append(message)


def test_a_bond_named_after_the_node_beats_as_nav2_servers_do(bonds):
    node = _Node()
    bond = LifecycleBond(node)
    bond.start()
    bond.start()
    assert [(b.topic, b.id, b.started) for b in bonds] == [('bond', 'inference', True)]
    assert (bonds[0].heartbeat_period, bonds[0].heartbeat_timeout) == (0.1, 4.0)
    bond.stop()
    bond.stop()
    assert bonds[0].is_broken() and not bond.active


def test_stop_without_start_does_nothing(bonds):
    LifecycleBond(_Node()).stop()
    assert bonds == []


def test_without_bondpy_there_is_no_bond_and_it_is_said_once(monkeypatch):
    monkeypatch.setitem(sys.modules, 'bondpy.bondpy', None)
    node = _Node()
    bond = LifecycleBond(node)
    bond.start()
    bond.start()
    assert not bond.active
    assert len(node.logged) == 1 and 'bond_timeout: 0.0' in node.logged[0]


def test_the_node_bonds_while_active_only(start, model, bonds):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))})
    assert harness.lifecycle.change('configure')
    assert bonds == []
    assert harness.lifecycle.change('activate')
    assert [(b.id, b.started, b.is_shutdown) for b in bonds] == [
        (harness.node_name, True, False)]
    assert harness.lifecycle.change('deactivate')
    assert bonds[0].is_shutdown
    assert harness.lifecycle.change('activate')
    assert len(bonds) == 2 and not bonds[1].is_shutdown
    assert harness.lifecycle.change('shutdown')
    assert bonds[1].is_shutdown
