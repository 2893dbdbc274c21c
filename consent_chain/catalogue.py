"""Scope catalogues: the published meaning of each bit of a grant's 64-bit scope mask.

A grant's scope is a bitmask over a catalogue (DESIGN.md section 4). For a **read grant** the catalogue lists
resource classes (a FHIR resource type, or an Observation category) and codes (LOINC); it ships as
``consent_chain/data/scope-catalogue-read-v1.json``. For a **scoring grant** the catalogue is a model's feature
list, in the model's order, so that a scoring request's used-feature mask compares bitwise with the grant
(the scoring issue builds those from model feature specs with :meth:`ScopeCatalogue.from_entries`).

In a FHIR ``Consent`` a class entry is a ``provision.class`` coding (``http://hl7.org/fhir/resource-types`` or
the observation-category system) and a code entry a ``provision.code`` coding.

Pure: parsing and matching over plain data, no I/O beyond reading the packaged catalogue once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "OBSERVATION_CATEGORY",
    "RESOURCE_TYPES",
    "Coding",
    "ScopeCatalogue",
    "ScopeEntry",
    "read_catalogue",
]

RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MASK_BITS = 64


@dataclass(frozen=True)
class Coding:
    system: str
    code: str

    def to_json(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code}


@dataclass(frozen=True)
class ScopeEntry:
    """One bit: a resource type, optionally narrowed to an Observation category or to one code."""

    bit: int
    key: str
    title: str
    resource_type: str
    category: Coding | None = None
    code: Coding | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.bit < MASK_BITS:
            raise ValueError(f"scope bit {self.bit} is outside 0..{MASK_BITS - 1}")
        if self.category is not None and self.code is not None:
            raise ValueError("a scope entry narrows by category or by code, not both")

    def matches(self, resource: Mapping[str, Any]) -> bool:
        """Whether this entry covers a (plaintext) resource."""
        if resource.get("resourceType") != self.resource_type:
            return False
        if self.category is not None:
            return _has_coding(resource.get("category"), self.category)
        if self.code is not None:
            return _has_coding(resource.get("code"), self.code)
        return True

    def provision_class(self) -> Coding | None:
        """This entry as a Consent ``provision.class`` coding (None for a code entry)."""
        if self.code is not None:
            return None
        if self.category is not None:
            return self.category
        return Coding(RESOURCE_TYPES, self.resource_type)


def _codings(value: Any) -> Iterable[Mapping[str, Any]]:
    concepts = value if isinstance(value, list) else [value]
    for concept in concepts:
        if isinstance(concept, Mapping):
            for coding in concept.get("coding") or []:
                if isinstance(coding, Mapping):
                    yield coding


def _has_coding(value: Any, wanted: Coding) -> bool:
    return any(c.get("system") == wanted.system and c.get("code") == wanted.code for c in _codings(value))


@dataclass(frozen=True)
class ScopeCatalogue:
    """An ordered, published set of scope entries, identified by ``catalogue_id``."""

    catalogue_id: str
    title: str
    entries: tuple[ScopeEntry, ...]

    def __post_init__(self) -> None:
        bits = [e.bit for e in self.entries]
        if len(set(bits)) != len(bits):
            raise ValueError(f"catalogue {self.catalogue_id} assigns a bit twice")
        keys = [e.key for e in self.entries]
        if len(set(keys)) != len(keys):
            raise ValueError(f"catalogue {self.catalogue_id} uses a key twice")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScopeCatalogue:
        entries = []
        for raw in data["entries"]:
            category = Coding(**raw["category"]) if "category" in raw else None
            code = Coding(**raw["code"]) if "code" in raw else None
            entries.append(ScopeEntry(int(raw["bit"]), raw["key"], raw["title"], raw["type"], category, code))
        return cls(str(data["id"]), str(data.get("title", data["id"])), tuple(entries))

    def to_json(self) -> dict[str, Any]:
        """The published form, as :meth:`from_json` reads it."""
        entries: list[dict[str, Any]] = []
        for e in self.entries:
            raw: dict[str, Any] = {"bit": e.bit, "key": e.key, "title": e.title, "type": e.resource_type}
            if e.category is not None:
                raw["category"] = e.category.to_json()
            if e.code is not None:
                raw["code"] = e.code.to_json()
            entries.append(raw)
        return {"id": self.catalogue_id, "title": self.title, "entries": entries}

    @classmethod
    def from_entries(cls, catalogue_id: str, title: str, entries: Sequence[ScopeEntry]) -> ScopeCatalogue:
        return cls(catalogue_id, title, tuple(entries))

    def entry(self, key: str) -> ScopeEntry:
        for e in self.entries:
            if e.key == key:
                return e
        raise KeyError(f"catalogue {self.catalogue_id} has no scope {key!r}")

    def mask(self, keys: Iterable[str]) -> int:
        """The scope mask granting the entries with these keys."""
        mask = 0
        for key in keys:
            mask |= 1 << self.entry(key).bit
        return mask

    def granted(self, mask: int) -> tuple[ScopeEntry, ...]:
        """The entries a mask grants; a bit with no entry is an error (nothing may be granted blindly)."""
        if not 0 <= mask < 1 << MASK_BITS:
            raise ValueError("a scope mask is a 64-bit unsigned integer")
        known = 0
        for e in self.entries:
            known |= 1 << e.bit
        if mask & ~known:
            raise ValueError(f"scope mask sets bits that catalogue {self.catalogue_id} does not define")
        return tuple(e for e in self.entries if mask >> e.bit & 1)

    def covers(self, mask: int, resource: Mapping[str, Any]) -> bool:
        """Whether a grant with this mask covers a plaintext resource."""
        return any(e.matches(resource) for e in self.granted(mask))

    def type_mask(self, resource_type: str) -> int:
        """Bits whose entries can match some resource of this type (what a vault that sees only types checks)."""
        mask = 0
        for e in self.entries:
            if e.resource_type == resource_type:
                mask |= 1 << e.bit
        return mask

    def from_provision(self, classes: Iterable[Mapping[str, Any]], codes: Iterable[Mapping[str, Any]]) -> int:
        """The mask for a Consent's ``provision.class`` codings and ``provision.code`` concepts."""
        mask = 0
        for c in classes:
            wanted = Coding(str(c.get("system")), str(c.get("code")))
            found = [e for e in self.entries if e.code is None and e.provision_class() == wanted]
            if not found:
                raise ValueError(f"provision.class {wanted.system}|{wanted.code} is not in {self.catalogue_id}")
            mask |= 1 << found[0].bit
        for concept in codes:
            for coding in _codings(concept):
                wanted = Coding(str(coding.get("system")), str(coding.get("code")))
                found = [e for e in self.entries if e.code == wanted]
                if not found:
                    raise ValueError(f"provision.code {wanted.system}|{wanted.code} is not in {self.catalogue_id}")
                mask |= 1 << found[0].bit
        return mask


@cache
def read_catalogue() -> ScopeCatalogue:
    """The published read-grant catalogue, ``pchr-read-v1``."""
    text = resources.files("consent_chain").joinpath("data/scope-catalogue-read-v1.json").read_text()
    return ScopeCatalogue.from_json(json.loads(text))
