"""Who the patient is: sex, age, name and the stable patient id."""

from __future__ import annotations

from datetime import timedelta

from synthetic.drawer import Drawer
from synthetic.journey import Journey

_GIVEN = ["Maria", "Linda", "Susan", "Aiko", "Fatima", "Olga", "Grace", "Ines", "Priya", "Joan"]
_GIVEN += ["Hana", "Rosa", "Amara", "Helen", "Mei", "Sofia", "Nadia", "Ruth", "Carmen", "Lea"]
_FAMILY = ["Garcia", "Okafor", "Nguyen", "Schmidt", "Kowalski", "Haddad", "Silva", "Tanaka"]
_FAMILY += ["Murphy", "Rossi", "Jensen", "Novak", "Mensah", "Cohen", "Patel", "Larsen"]
_MALE_GIVEN = ["James", "Omar", "Piotr", "Kenji"]


def person(dr: Drawer, index: int, kind: str) -> Journey:
    rng = dr.rng
    male = kind != "non-breast" and rng.random() < 0.01
    sex = "male" if male else ("female" if kind != "non-breast" or rng.random() < 0.5 else "male")
    given = rng.choice(_MALE_GIVEN if sex == "male" else _GIVEN)
    age = rng.randint(32, 84)
    birth = dr.as_of - timedelta(days=age * 365 + rng.randint(0, 364))
    pid = f"synth-{index:05d}-{rng.getrandbits(32):08x}"
    return Journey(pid, index, dr.as_of, kind, sex, birth, (given, rng.choice(_FAMILY)))
