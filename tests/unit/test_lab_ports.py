"""Lab port slots: no two test modules share ports, and none sits in the ephemeral range.

Two modules on one slot fail only when test workers happen to run them at the same moment (CI
saw "already in use by another program" once in several runs); this check fails every time.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.lab import DEFAULT_LAB_PORTS, EPHEMERAL_START, LAB_SLOTS, lab_ports

TESTS = Path(__file__).resolve().parents[1]


def test_every_slot_number_is_used_once_and_below_the_ephemeral_range() -> None:
    numbers = Counter(LAB_SLOTS.values())
    assert [n for n, count in numbers.items() if count > 1] == []
    for name in LAB_SLOTS:
        ports = lab_ports(name)
        assert ports.all().stop <= EPHEMERAL_START, name
        assert {ports.ami, ports.sip, ports.ari, ports.rtp_start, ports.rtp_end} <= set(ports.all())
        assert ports.ami not in range(ports.rtp_start, ports.rtp_end + 1), name


def test_no_slot_takes_a_port_of_the_default_lab() -> None:
    """`make demo` leaves its lab (the default ports) running; `make test` after it must pass."""
    default = {port for ports in DEFAULT_LAB_PORTS for port in ports}
    for name in LAB_SLOTS:
        assert not default & set(lab_ports(name).all()), name


def test_slots_never_overlap() -> None:
    taken: dict[int, str] = {}
    for name in LAB_SLOTS:
        for port in lab_ports(name).all():
            assert port not in taken, f"{name} and {taken[port]} share port {port}"
            taken[port] = name


def test_each_slot_belongs_to_one_module() -> None:
    users: dict[str, list[str]] = {}
    for path in TESTS.rglob("*.py"):
        for name in re.findall(r'lab_ports\("(\w+)"\)', path.read_text(encoding="utf-8")):
            users.setdefault(name, []).append(str(path.relative_to(TESTS)))
    assert {name: files for name, files in users.items() if len(files) > 1} == {}
    assert set(users) <= set(LAB_SLOTS)


def test_no_module_starts_a_lab_on_a_literal_port() -> None:
    literal = re.compile(r"private_lab\([^)]*?,\s*\d")
    offenders = [
        str(p.relative_to(TESTS))
        for p in TESTS.rglob("*.py")
        if literal.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
