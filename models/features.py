"""Feature specs: where each input of a risk model comes from in FHIR, its unit, and its public grid.

A :class:`FeatureSpec` is part of a model artifact (DESIGN.md section 5). Each :class:`Feature` names

- its **FHIR source**: an ``Observation`` whose ``code`` (or a ``component.code``) carries a LOINC coding, or a
  coding in pchr's own system ``urn:pchr:feature`` for quantities LOINC has no code for; or ``Patient.birthDate``,
  read as age in completed years at a reference date;
- its **unit** (a UCUM code, https://ucum.org/ucum) and the few other units it converts from;
- its public **quantizer**: a uniform grid ``lo + k * step`` for ``k = 0 .. levels - 1``. Extraction snaps every
  value to the grid (clipping at its ends), models are trained on grid values, and training moves each split
  threshold to the midpoint between two grid points (:meth:`Quantizer.snap`). So every comparison ``x < t``
  the model makes has a margin of at least half a step; in the grid's unit coordinates (:meth:`Quantizer.unit`,
  ``k / (levels - 1)`` in [0, 1]) at least ``1 / (2 * (levels - 1))``, which is what a polynomial approximation
  of sign over encrypted data needs. Clipping never changes a decision: the grid encloses the training data, so
  every threshold lies inside it.

Extraction (:func:`extract`) reads plaintext FHIR R4B resources of one patient and yields the model's vector:
the latest value per feature (``final``, ``amended`` or ``corrected`` observations effective on or before the
reference date), NaN where a feature is absent, and ``used_mask`` with bit *i* set when feature *i* is present.
Features outside a grant's scope mask are forced missing, so ``used_mask`` is always a subset of the scope.
:func:`catalogue_for` publishes a spec as a scope catalogue (bit *i* = feature *i*), so that a scoring grant's
scope compares bitwise with a used mask. :func:`to_fhir` goes the other way, for tests and the demo.

The two models (issue 4):

- ``diabetes``: type-2 diabetes by WHO criteria in Pima women (Smith et al. 1988, via Ripley 1996, MASS
  ``Pima.tr`` + ``Pima.te``, 532 complete records). Plasma glucose there is the **2-hour value of an oral glucose
  tolerance test**; under the WHO criteria the data were labelled by, that test is the 75 g load, so the feature
  is LOINC 1518-0 "Glucose [Mass/volume] in Serum or Plasma --2 hours post 75 g glucose PO", not 2345-7 (a
  glucose at no stated time, which would let a random glucose stand in for a challenge value and shift every
  glucose split). Triceps skinfold thickness has no LOINC code that we could confirm (39106-0, often quoted for
  it, is "Temperature of Skin"), so it is ``urn:pchr:feature#triceps-skinfold``, like the diabetes pedigree
  function, which is a score defined by Smith et al. from family history. The others are LOINC 8462-4
  (diastolic blood pressure, also found as a component of the 85354-9 panel), 39156-5 (BMI) and 11996-6
  ([#] Pregnancies); age comes from ``Patient.birthDate``.
- ``breast``: malignancy of a breast mass from fine-needle-aspirate cytology, the Wisconsin diagnostic data
  (Street, Wolberg and Mangasarian 1993; UCI WDBC, as shipped by scikit-learn, 569 cases): 30 image features,
  each an Observation coded ``urn:pchr:feature#<slug of the scikit-learn feature name>``. The source gives no
  units (lengths and areas are in image pixels), so they are UCUM ``1``.

Pure: the standard library and numpy; nothing here reads files or the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from consent_chain.catalogue import OBSERVATION_CATEGORY, Coding, ScopeCatalogue, ScopeEntry
from models.errors import FeatureError

__all__ = [
    "BREAST",
    "DIABETES",
    "LOINC",
    "MAX_FEATURES",
    "MAX_LEVELS",
    "PCHR_FEATURE_SYSTEM",
    "SPECS",
    "UCUM",
    "AgeSource",
    "Feature",
    "FeatureSpec",
    "FeatureVector",
    "ObservationSource",
    "Quantizer",
    "catalogue_for",
    "extract",
    "to_fhir",
]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PCHR_FEATURE_SYSTEM = "urn:pchr:feature"
MAX_FEATURES = 64
"""A scope mask has 64 bits, one per feature."""
MAX_LEVELS = 256
"""Grid points per feature at most; the specs below use at most 64 (a margin of 1/126 in unit coordinates)."""

_KEY_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_USABLE_STATUS = frozenset({"final", "amended", "corrected"})
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_COUNT_UNITS = frozenset({"1", "{#}"})

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Quantizer:
    """The public grid ``lo + k * step``, ``k = 0 .. levels - 1``, that a feature's values are snapped to."""

    lo: float
    step: float
    levels: int

    def __post_init__(self) -> None:
        # Stored as floats whatever was passed, so that the JSON form is the same before and after a round trip.
        object.__setattr__(self, "lo", float(self.lo))
        object.__setattr__(self, "step", float(self.step))
        if not (math.isfinite(self.lo) and math.isfinite(self.step) and self.step > 0):
            raise FeatureError("a quantizer needs a finite lo and a positive step")
        if not 2 <= self.levels <= MAX_LEVELS:
            raise FeatureError(f"a quantizer has 2..{MAX_LEVELS} levels, not {self.levels}")

    @property
    def decimals(self) -> int:
        """Decimal places of the grid (values are rounded to them, so that grid points print exactly)."""
        places = [-int(Decimal(repr(v)).normalize().as_tuple().exponent) for v in (self.lo, self.step)]
        return max(0, *places)

    @property
    def hi(self) -> float:
        return self.value(self.levels - 1)

    def value(self, k: int) -> float:
        """Grid point ``k``."""
        return float(np.round(self.lo + k * self.step, self.decimals))

    def levels_of(self, x: npt.ArrayLike) -> FloatArray:
        """Grid indices of values (clipped to the grid), NaN where a value is NaN."""
        arr = np.asarray(x, dtype=np.float64)
        k = np.floor((arr - self.lo) / self.step + 0.5)
        return np.clip(k, 0, self.levels - 1)

    def quantize(self, x: npt.ArrayLike) -> FloatArray:
        """Values snapped to the nearest grid point (clipped to the grid); NaN stays NaN."""
        return np.round(self.lo + self.levels_of(x) * self.step, self.decimals)

    def unit(self, x: npt.ArrayLike) -> FloatArray:
        """Grid coordinates in [0, 1]: ``k / (levels - 1)`` (what an encrypted comparison works on)."""
        return self.levels_of(x) / (self.levels - 1)

    def threshold_unit(self, threshold: float) -> float:
        """A split threshold in the same coordinates as :meth:`unit` (``(k - 0.5) / (levels - 1)`` when snapped)."""
        return (threshold - self.lo) / self.step / (self.levels - 1)

    def snap(self, threshold: float) -> float:
        """The midpoint threshold that splits the grid exactly as ``x < threshold`` does.

        XGBoost compares in float32, so the grid points are counted the way it would see them. A threshold below
        the grid becomes ``lo - step / 2`` (every grid value goes right), one above it ``hi + step / 2``.
        """
        t32 = np.float32(threshold)
        grid = np.round(self.lo + np.arange(self.levels) * self.step, self.decimals).astype(np.float32)
        below = int(np.count_nonzero(grid < t32))
        return float(np.round(self.lo + (below - 0.5) * self.step, self.decimals + 1))

    def to_json(self) -> dict[str, Any]:
        return {"lo": self.lo, "step": self.step, "levels": self.levels}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quantizer:
        return cls(float(data["lo"]), float(data["step"]), int(data["levels"]))


@dataclass(frozen=True)
class ObservationSource:
    """An Observation whose ``code`` (or one of whose ``component.code``) has this coding."""

    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class AgeSource:
    """``Patient.birthDate``, read as age in completed years at the reference date."""

    element: str = "Patient.birthDate"


Source = ObservationSource | AgeSource


@dataclass(frozen=True)
class Feature:
    """One model input: its key (also its XGBoost feature name), FHIR source, unit and grid."""

    key: str
    title: str
    source: Source
    unit: str
    quantizer: Quantizer
    category: str | None = None
    conversions: tuple[tuple[str, float], ...] = ()
    """Other UCUM units accepted, each with the factor that converts it to ``unit``."""

    def __post_init__(self) -> None:
        if not _KEY_RE.match(self.key) or len(self.key) > 48:
            raise FeatureError(f"feature key {self.key!r} is not a lower-case slug of at most 48 characters")
        if isinstance(self.source, AgeSource) and self.unit != "a":
            raise FeatureError(f"feature {self.key}: age is in years (UCUM 'a')")

    def factor(self, unit: str | None) -> float | None:
        """The factor converting a value in ``unit`` to this feature's unit, or None if it does not convert."""
        if unit == self.unit or (unit is None and self.unit in _COUNT_UNITS):
            return 1.0
        if self.unit in _COUNT_UNITS and unit in _COUNT_UNITS:
            return 1.0
        return dict(self.conversions).get(unit or "")

    def to_json(self) -> dict[str, Any]:
        source: dict[str, Any]
        if isinstance(self.source, ObservationSource):
            source = {"type": "Observation", **self.source.coding()}
        else:
            source = {"type": self.source.element}
        data: dict[str, Any] = {
            "key": self.key,
            "title": self.title,
            "source": source,
            "unit": self.unit,
            "quantizer": self.quantizer.to_json(),
        }
        if self.category is not None:
            data["category"] = self.category
        if self.conversions:
            data["conversions"] = [[unit, factor] for unit, factor in self.conversions]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Feature:
        raw = data["source"]
        source: Source
        if raw["type"] == "Observation":
            source = ObservationSource(str(raw["system"]), str(raw["code"]), str(raw["display"]))
        elif raw["type"] == AgeSource.element:
            source = AgeSource()
        else:
            raise FeatureError(f"unknown feature source {raw['type']!r}")
        conversions = tuple((str(u), float(f)) for u, f in data.get("conversions", []))
        category = data.get("category")
        return cls(
            str(data["key"]),
            str(data["title"]),
            source,
            str(data["unit"]),
            Quantizer.from_json(data["quantizer"]),
            str(category) if category is not None else None,
            conversions,
        )


@dataclass(frozen=True)
class FeatureSpec:
    """A model's inputs, in the model's order (feature *i* is scope bit *i*)."""

    name: str
    version: int
    title: str
    label: str
    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        if not _KEY_RE.match(self.name):
            raise FeatureError(f"spec name {self.name!r} is not a lower-case slug")
        if not 1 <= len(self.features) <= MAX_FEATURES:
            raise FeatureError(f"a spec has 1..{MAX_FEATURES} features (one scope bit each)")
        keys = [f.key for f in self.features]
        if len(set(keys)) != len(keys):
            raise FeatureError(f"spec {self.name} uses a feature key twice")
        sources = [f.source for f in self.features]
        if len(set(sources)) != len(sources):
            raise FeatureError(f"spec {self.name} reads one FHIR source into two features")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.features)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def full_mask(self) -> int:
        return (1 << len(self.features)) - 1

    @property
    def catalogue_id(self) -> str:
        return f"pchr-features-{self.name}-v{self.version}"

    def index(self, key: str) -> int:
        try:
            return self.keys.index(key)
        except ValueError:
            raise FeatureError(f"spec {self.name} has no feature {key!r}") from None

    def mask(self, keys: Iterable[str]) -> int:
        """The mask with the bits of these features set."""
        mask = 0
        for key in keys:
            mask |= 1 << self.index(key)
        return mask

    def check_mask(self, mask: int) -> int:
        """``mask`` if it only sets bits of this spec's features (FeatureError otherwise)."""
        if not 0 <= mask <= self.full_mask:
            raise FeatureError(f"mask {mask:#x} does not fit the {self.n_features} features of {self.name}")
        return mask

    def quantize(self, x: npt.ArrayLike) -> FloatArray:
        """Rows of raw values snapped to each feature's grid; NaN stays NaN."""
        arr = self._rows(x)
        out = np.empty_like(arr)
        for j, f in enumerate(self.features):
            out[:, j] = f.quantizer.quantize(arr[:, j])
        return out

    def unit(self, x: npt.ArrayLike) -> FloatArray:
        """Rows mapped to grid coordinates in [0, 1]; NaN stays NaN."""
        arr = self._rows(x)
        out = np.empty_like(arr)
        for j, f in enumerate(self.features):
            out[:, j] = f.quantizer.unit(arr[:, j])
        return out

    def used_mask(self, row: npt.ArrayLike) -> int:
        """Bit *i* set when feature *i* of one row is present (not NaN)."""
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (self.n_features,):
            raise FeatureError(f"a row of {self.name} has {self.n_features} values, not shape {values.shape}")
        return sum(1 << i for i, v in enumerate(values) if not math.isnan(v))

    def _rows(self, x: npt.ArrayLike) -> FloatArray:
        arr = np.array(x, dtype=np.float64, ndmin=2)
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise FeatureError(f"{self.name} takes rows of {self.n_features} features, not shape {arr.shape}")
        return arr

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "label": self.label,
            "features": [f.to_json() for f in self.features],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        try:
            return cls(
                str(data["name"]),
                int(data["version"]),
                str(data["title"]),
                str(data["label"]),
                tuple(Feature.from_json(f) for f in data["features"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FeatureError(f"not a feature spec: {exc!r}") from exc


@dataclass(frozen=True)
class FeatureVector:
    """One patient's model input: grid values (NaN = missing) and the public mask of present features."""

    values: tuple[float, ...]
    used_mask: int
    notes: tuple[str, ...] = field(default=())
    """Why some records were not used (unit, status, date); names features and elements, never values."""

    def array(self) -> FloatArray:
        return np.array(self.values, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Extraction


def extract(
    spec: FeatureSpec,
    resources: Sequence[Mapping[str, Any]],
    *,
    reference_date: date,
    scope: int | None = None,
) -> FeatureVector:
    """The feature vector of one patient's plaintext FHIR resources, as of ``reference_date``.

    Features whose bit is not in ``scope`` (when given) are missing whatever the records hold. Raises
    FeatureError if the resources belong to more than one patient or the scope does not fit the spec.
    """
    if scope is not None:
        spec.check_mask(scope)
    _one_patient(resources)
    notes: list[str] = []
    values = [math.nan] * spec.n_features
    for i, feature in enumerate(spec.features):
        if scope is not None and not scope >> i & 1:
            continue
        if isinstance(feature.source, AgeSource):
            value = _age(feature, resources, reference_date, notes)
        else:
            value = _latest_observation(feature, feature.source, resources, reference_date, notes)
        if value is not None:
            values[i] = float(feature.quantizer.quantize(value))
    used = spec.used_mask(values)
    return FeatureVector(tuple(values), used, tuple(notes))


def _one_patient(resources: Sequence[Mapping[str, Any]]) -> None:
    patients: set[str] = set()
    for r in resources:
        if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str):
            patients.add(r["id"].lower())
        subject = r.get("subject")
        if isinstance(subject, Mapping) and isinstance(subject.get("reference"), str):
            ref = subject["reference"]
            if ref.startswith("Patient/"):
                patients.add(ref.removeprefix("Patient/").lower())
    if len(patients) > 1:
        raise FeatureError(f"feature extraction takes one patient's records; these name {len(patients)} patients")


def _age(feature: Feature, resources: Sequence[Mapping[str, Any]], on: date, notes: list[str]) -> float | None:
    birth: date | None = None
    for r in resources:
        if r.get("resourceType") == "Patient" and "birthDate" in r:
            parsed = _parse_birth_date(r["birthDate"])
            if parsed is None:
                notes.append(f"{feature.key}: Patient.birthDate is not a FHIR date; ignored")
            else:
                birth = parsed
    if birth is None:
        return None
    if birth > on:
        notes.append(f"{feature.key}: Patient.birthDate is after the reference date; ignored")
        return None
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return float(years)


def _parse_birth_date(value: object) -> date | None:
    """A FHIR ``date``; a partial one stands for the middle of its period (1 July, or the 15th)."""
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value)
    if m is None:
        return None
    year, month, day = m.groups()
    try:
        if month is None:
            return date(int(year), 7, 1)
        if day is None:
            return date(int(year), int(month), 15)
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _parse_instant(value: object) -> datetime | None:
    """A FHIR ``dateTime`` or ``instant`` as an aware datetime (partial dates at their start, UTC if no zone)."""
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value)
    if m is not None:
        year, month, day = m.groups()
        try:
            return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _effective(obs: Mapping[str, Any]) -> datetime | None:
    period = obs.get("effectivePeriod")
    candidates: list[object] = [obs.get("effectiveDateTime"), obs.get("effectiveInstant")]
    if isinstance(period, Mapping):
        candidates += [period.get("end"), period.get("start")]
    candidates.append(obs.get("issued"))
    for value in candidates:
        if value is not None:
            return _parse_instant(value)
    return None


def _has_coding(concept: object, source: ObservationSource) -> bool:
    if not isinstance(concept, Mapping):
        return False
    return any(
        isinstance(c, Mapping) and c.get("system") == source.system and c.get("code") == source.code
        for c in concept.get("coding") or []
    )


def _value(feature: Feature, holder: Mapping[str, Any], notes: list[str]) -> float | None:
    if "valueInteger" in holder and isinstance(holder["valueInteger"], int) and feature.unit in _COUNT_UNITS:
        return float(holder["valueInteger"])
    quantity = holder.get("valueQuantity")
    if not isinstance(quantity, Mapping):
        notes.append(f"{feature.key}: an observation has no valueQuantity; ignored")
        return None
    raw = quantity.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        notes.append(f"{feature.key}: an observation has no numeric value; ignored")
        return None
    unit = quantity.get("code") if quantity.get("code") is not None else quantity.get("unit")
    factor = feature.factor(str(unit) if unit is not None else None)
    if factor is None:
        notes.append(f"{feature.key}: unit {str(unit)[:32]!r} does not convert to {feature.unit!r}; ignored")
        return None
    return float(raw) * factor


def _latest_observation(
    feature: Feature,
    source: ObservationSource,
    resources: Sequence[Mapping[str, Any]],
    on: date,
    notes: list[str],
) -> float | None:
    best: tuple[datetime, int] | None = None
    best_value: float | None = None
    oldest = datetime.min.replace(tzinfo=UTC)
    for position, r in enumerate(resources):
        if r.get("resourceType") != "Observation":
            continue
        holders: list[Mapping[str, Any]] = []
        if _has_coding(r.get("code"), source):
            holders.append(r)
        holders += [
            c for c in r.get("component") or [] if isinstance(c, Mapping) and _has_coding(c.get("code"), source)
        ]
        if not holders:
            continue
        if r.get("status") not in _USABLE_STATUS:
            notes.append(f"{feature.key}: an observation with status {str(r.get('status'))[:20]!r}; ignored")
            continue
        when = _effective(r)
        if when is not None and when.date() > on:
            notes.append(f"{feature.key}: an observation after the reference date; ignored")
            continue
        value = _value(feature, holders[0], notes)
        if value is None:
            continue
        rank = (when or oldest, position)
        if best is None or rank > best:
            best, best_value = rank, value
    return best_value


# ---------------------------------------------------------------------------------------------------------------
# The inverse, for tests and the demo


def to_fhir(
    spec: FeatureSpec,
    row: Sequence[float] | npt.NDArray[np.float64],
    patient_address: str,
    *,
    reference_date: date,
    effective: datetime | None = None,
) -> list[dict[str, Any]]:
    """A Patient and one Observation per present feature holding a data row (grid values; NaN = absent).

    ``birthDate`` is put half a year before the birthday that gives the row's age at ``reference_date``;
    observations are effective at ``effective`` (default: 09:00 UTC on the reference date).
    """
    values = np.asarray(row, dtype=np.float64)
    if values.shape != (spec.n_features,):
        raise FeatureError(f"a row of {spec.name} has {spec.n_features} values, not shape {values.shape}")
    when = effective or datetime(reference_date.year, reference_date.month, reference_date.day, 9, tzinfo=UTC)
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_address}
    observations: list[dict[str, Any]] = []
    for feature, raw in zip(spec.features, values, strict=True):
        if math.isnan(raw):
            continue
        value = float(feature.quantizer.quantize(raw))
        if isinstance(feature.source, AgeSource):
            patient["birthDate"] = _birth_date_for(int(value), reference_date).isoformat()
            continue
        observations.append(_observation(feature, feature.source, value, patient_address, when))
    return [patient, *observations]


def _birth_date_for(age: int, on: date) -> date:
    try:
        birthday = on.replace(year=on.year - age)
    except ValueError:  # 29 February
        birthday = on.replace(year=on.year - age, day=28)
    return birthday - timedelta(days=182)


def _observation(
    feature: Feature, source: ObservationSource, value: float, patient: str, when: datetime
) -> dict[str, Any]:
    number: float | int = int(value) if feature.quantizer.decimals == 0 else value
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final"}
    if feature.category is not None:
        obs["category"] = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": feature.category}]}]
    obs["code"] = {"coding": [source.coding()], "text": feature.title}
    obs["subject"] = {"reference": f"Patient/{patient}"}
    obs["effectiveDateTime"] = when.isoformat().replace("+00:00", "Z")
    obs["valueQuantity"] = {"value": number, "unit": feature.unit, "system": UCUM, "code": feature.unit}
    return obs


def catalogue_for(spec: FeatureSpec) -> ScopeCatalogue:
    """The scope catalogue of a scoring grant for this spec: bit *i* is feature *i*."""
    entries = []
    for i, f in enumerate(spec.features):
        if isinstance(f.source, AgeSource):
            entries.append(ScopeEntry(i, f.key, f.title, "Patient"))
        else:
            code = Coding(f.source.system, f.source.code)
            entries.append(ScopeEntry(i, f.key, f.title, "Observation", code=code))
    return ScopeCatalogue.from_entries(spec.catalogue_id, f"Features of the {spec.title} model", entries)


# ---------------------------------------------------------------------------------------------------------------
# The two specs


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


DIABETES = FeatureSpec(
    name="diabetes",
    version=1,
    title="Type-2 diabetes risk (Pima)",
    label="diabetes by WHO criteria",
    features=(
        Feature(
            "glucose-2h-ogtt",
            "Plasma glucose 2 h after a 75 g oral glucose load",
            ObservationSource(
                LOINC, "1518-0", "Glucose [Mass/volume] in Serum or Plasma --2 hours post 75 g glucose PO"
            ),
            "mg/dL",
            Quantizer(40, 5, 64),
            "laboratory",
            # mmol/L -> mg/dL: the molar mass of glucose, 180.16 g/mol.
            (("mmol/L", 18.016),),
        ),
        Feature(
            "diastolic-bp",
            "Diastolic blood pressure",
            ObservationSource(LOINC, "8462-4", "Diastolic blood pressure"),
            "mm[Hg]",
            Quantizer(20, 2, 64),
            "vital-signs",
        ),
        Feature(
            "triceps-skinfold",
            "Triceps skinfold thickness",
            ObservationSource(PCHR_FEATURE_SYSTEM, "triceps-skinfold", "Triceps skinfold thickness"),
            "mm",
            Quantizer(0, 2, 64),
            "exam",
            (("cm", 10.0),),
        ),
        Feature(
            "bmi",
            "Body mass index",
            ObservationSource(LOINC, "39156-5", "Body mass index (BMI) [Ratio]"),
            "kg/m2",
            Quantizer(15, 1, 64),
            "vital-signs",
        ),
        Feature(
            "pregnancies",
            "Number of pregnancies",
            ObservationSource(LOINC, "11996-6", "[#] Pregnancies"),
            "{#}",
            Quantizer(0, 1, 32),
            "social-history",
        ),
        Feature("age", "Age", AgeSource(), "a", Quantizer(18, 1, 64)),
        Feature(
            "diabetes-pedigree",
            "Diabetes pedigree function (Smith et al. 1988)",
            ObservationSource(PCHR_FEATURE_SYSTEM, "diabetes-pedigree-function", "Diabetes pedigree function"),
            "1",
            Quantizer(0, 0.04, 64),
            "survey",
        ),
    ),
)

# (scikit-learn feature name, lo, step, levels): the smallest step in {1, 2, 2.5, 5} x 10^e whose grid of at most
# 64 points, starting at the step-multiple below the data's minimum, reaches its maximum.
_WDBC_GRIDS: tuple[tuple[str, float, float, int], ...] = (
    ("mean radius", 6.5, 0.5, 45),
    ("mean texture", 9.5, 0.5, 61),
    ("mean perimeter", 42.5, 2.5, 60),
    ("mean area", 100, 50, 50),
    ("mean smoothness", 0.052, 0.002, 57),
    ("mean compactness", 0.01, 0.01, 35),
    ("mean concavity", 0, 0.01, 44),
    ("mean concave points", 0, 0.005, 42),
    ("mean symmetry", 0.105, 0.005, 41),
    ("mean fractal dimension", 0.049, 0.001, 50),
    ("radius error", 0.1, 0.05, 57),
    ("texture error", 0.3, 0.1, 47),
    ("perimeter error", 0.5, 0.5, 44),
    ("area error", 0, 10, 56),
    ("smoothness error", 0.0015, 0.0005, 61),
    ("compactness error", 0, 0.0025, 56),
    ("concavity error", 0, 0.01, 41),
    ("concave points error", 0, 0.001, 54),
    ("symmetry error", 0.006, 0.002, 38),
    ("fractal dimension error", 0.0005, 0.0005, 60),
    ("worst radius", 7.5, 0.5, 59),
    ("worst texture", 12, 1, 39),
    ("worst perimeter", 50, 5, 42),
    ("worst area", 100, 100, 43),
    ("worst smoothness", 0.07, 0.0025, 63),
    ("worst compactness", 0.02, 0.02, 53),
    ("worst concavity", 0, 0.02, 64),
    ("worst concave points", 0, 0.005, 60),
    ("worst symmetry", 0.15, 0.01, 53),
    ("worst fractal dimension", 0.055, 0.0025, 62),
)

BREAST = FeatureSpec(
    name="breast",
    version=1,
    title="Breast mass malignancy (Wisconsin diagnostic)",
    label="malignant",
    features=tuple(
        Feature(
            _slug(name),
            f"Breast FNA cytology: {name}",
            ObservationSource(PCHR_FEATURE_SYSTEM, _slug(name), f"Breast FNA {name}"),
            "1",
            Quantizer(lo, step, levels),
            "laboratory",
        )
        for name, lo, step, levels in _WDBC_GRIDS
    ),
)

SPECS: dict[str, FeatureSpec] = {s.name: s for s in (DIABETES, BREAST)}
