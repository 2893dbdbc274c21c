"""Feature specs: grids, FHIR round trips through extraction, scope masking, and the scoring-grant catalogue."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent_chain.catalogue import Coding
from ehr.fhir import validate_resource
from models.errors import FeatureError
from models.features import (
    BREAST,
    DIABETES,
    LOINC,
    PCHR_FEATURE_SYSTEM,
    SPECS,
    FeatureSpec,
    ObservationSource,
    Quantizer,
    catalogue_for,
    extract,
    to_fhir,
)
from models.train import Split

PATIENT = "0x" + "ab" * 20
ON = date(2026, 3, 1)
SPEC_OF = {"diabetes": DIABETES, "breast": BREAST}


def _obs(code: str, value: float, unit: str, *, when: str = "2026-02-01", system: str = LOINC, **extra: object) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        **extra,
    }


# --- grids -------------------------------------------------------------------------------------------------------


@given(
    lo=st.sampled_from([0.0, 0.5, 20.0, 0.052, 0.0015]),
    step=st.sampled_from([1.0, 0.5, 2.5, 0.002, 0.0005, 100.0]),
    levels=st.integers(2, 64),
    threshold=st.floats(-1e4, 1e4, allow_nan=False),
)
def test_snap_keeps_every_grid_value_on_its_side_and_lands_midway(
    lo: float, step: float, levels: int, threshold: float
) -> None:
    q = Quantizer(lo, step, levels)
    grid = np.array([q.value(k) for k in range(levels)], dtype=np.float32)
    snapped = q.snap(threshold)
    assert np.array_equal(grid < np.float32(threshold), grid < np.float32(snapped))
    k = (snapped - q.lo) / q.step
    assert abs(k - math.floor(k) - 0.5) < 1e-6


def test_quantize_snaps_to_the_nearest_grid_point_and_clips() -> None:
    q = Quantizer(15, 1, 64)
    assert q.quantize([14.2, 30.4, 30.6, 1000.0, math.nan]).tolist()[:4] == [15.0, 30.0, 31.0, 78.0]
    assert math.isnan(q.quantize(math.nan))
    assert q.hi == 78.0
    assert q.unit([15.0, 78.0]).tolist() == [0.0, 1.0]
    with pytest.raises(FeatureError, match=r"2\.\.256 levels"):
        Quantizer(0, 1, 1)


@pytest.mark.parametrize("name", ["diabetes", "breast-small"])
def test_grids_enclose_the_training_data_with_at_most_64_levels(name: str, splits: dict[str, Split]) -> None:
    data = splits[name].data
    for j, f in enumerate(data.spec.features):
        column = data.x[:, j]
        assert f.quantizer.lo <= column.min(), f.key
        assert column.max() <= f.quantizer.hi, f.key
        assert f.quantizer.levels <= 64


@pytest.mark.parametrize("spec", [DIABETES, BREAST])
def test_spec_json_round_trip(spec: FeatureSpec) -> None:
    assert FeatureSpec.from_json(spec.to_json()) == spec
    assert FeatureSpec.from_json(spec.to_json()).to_json() == spec.to_json()


def test_the_diabetes_spec_reads_the_sources_the_issue_names() -> None:
    sources = [
        (f.source.system, f.source.code) if isinstance(f.source, ObservationSource) else f.source.element
        for f in DIABETES.features
    ]
    assert sources == [
        (LOINC, "1518-0"),  # 2-h plasma glucose of a 75 g OGTT, as in the Pima data
        (LOINC, "8462-4"),
        (PCHR_FEATURE_SYSTEM, "triceps-skinfold"),
        (LOINC, "39156-5"),
        (LOINC, "11996-6"),
        "Patient.birthDate",
        (PCHR_FEATURE_SYSTEM, "diabetes-pedigree-function"),
    ]
    assert len(BREAST.features) == 30
    assert {f.source.system for f in BREAST.features if isinstance(f.source, ObservationSource)} == {
        PCHR_FEATURE_SYSTEM
    }


def test_a_spec_refuses_duplicate_keys_and_too_many_features() -> None:
    f = DIABETES.features[0]
    with pytest.raises(FeatureError, match="feature key twice"):
        FeatureSpec("x", 1, "x", "x", (f, f))
    with pytest.raises(FeatureError, match=r"1\.\.64 features"):
        FeatureSpec("x", 1, "x", "x", ())


# --- FHIR round trip -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["diabetes", "breast"])
def test_to_fhir_resources_are_valid_r4b(name: str, splits: dict[str, Split]) -> None:
    spec = SPEC_OF[name]
    for row in splits[name].x_test[:5]:
        resources = to_fhir(spec, row, PATIENT, reference_date=ON)
        assert resources[0]["resourceType"] == "Patient"
        assert len(resources) == 1 + sum(1 for f in spec.features if isinstance(f.source, ObservationSource))
        for resource in resources:
            validate_resource(resource)


@pytest.mark.parametrize("name", ["diabetes", "breast"])
def test_extract_recovers_every_held_out_row_from_its_fhir_form(name: str, splits: dict[str, Split]) -> None:
    spec = SPEC_OF[name]
    for row in splits[name].x_test:
        vector = extract(spec, to_fhir(spec, row, PATIENT, reference_date=ON), reference_date=ON)
        assert vector.values == tuple(row.tolist())
        assert vector.used_mask == spec.full_mask
        assert vector.notes == ()


def test_absent_features_are_nan_and_clear_in_the_used_mask(splits: dict[str, Split]) -> None:
    row = splits["diabetes"].x_test[0].copy()
    row[[0, 5]] = np.nan  # no glucose, no birthDate
    resources = to_fhir(DIABETES, row, PATIENT, reference_date=ON)
    assert "birthDate" not in resources[0]
    vector = extract(DIABETES, resources, reference_date=ON)
    assert math.isnan(vector.values[0])
    assert math.isnan(vector.values[5])
    assert vector.used_mask == DIABETES.full_mask & ~(1 << 0) & ~(1 << 5)
    assert np.array_equal(vector.array(), row, equal_nan=True)


def test_features_outside_the_scope_are_missing_whatever_the_records_hold(splits: dict[str, Split]) -> None:
    row = splits["diabetes"].x_test[1]
    resources = to_fhir(DIABETES, row, PATIENT, reference_date=ON)
    scope = DIABETES.mask(["glucose-2h-ogtt", "bmi", "age"])
    vector = extract(DIABETES, resources, reference_date=ON, scope=scope)
    assert vector.used_mask == scope
    for i, value in enumerate(vector.values):
        assert math.isnan(value) == (not scope >> i & 1)
    assert extract(DIABETES, resources, reference_date=ON, scope=0).used_mask == 0
    with pytest.raises(FeatureError, match="does not fit the 7 features"):
        extract(DIABETES, resources, reference_date=ON, scope=1 << 7)


def test_the_latest_usable_observation_as_of_the_reference_date_wins() -> None:
    resources = [
        {"resourceType": "Patient", "id": PATIENT, "birthDate": "1980-06-15"},
        _obs("39156-5", 31.0, "kg/m2", when="2025-01-01"),
        _obs("39156-5", 33.0, "kg/m2", when="2026-02-20T10:00:00+01:00"),
        _obs("39156-5", 40.0, "kg/m2", when="2026-02-25", status="entered-in-error"),
        _obs("39156-5", 45.0, "kg/m2", when="2026-04-01"),  # after the reference date
        _obs("39156-5", 29.0, "kg/m2", when="2024"),
    ]
    vector = extract(DIABETES, resources, reference_date=ON)
    assert vector.values[DIABETES.index("bmi")] == 33.0
    assert vector.values[DIABETES.index("age")] == 45.0
    assert any("status 'entered-in-error'" in n for n in vector.notes)
    assert any("after the reference date" in n for n in vector.notes)


def test_units_components_and_integers() -> None:
    resources = [
        _obs("1518-0", 7.8, "mmol/L"),  # 140.5 mg/dL, on a 5 mg/dL grid
        {
            **_obs("85354-9", 0, "mm[Hg]"),
            "valueQuantity": None,
            "component": [
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 128}},
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {"value": 81, "code": "mm[Hg]"},  # half-way between 80 and 82
                },
            ],
        },
        {**_obs("11996-6", 0, "{#}"), "valueQuantity": None, "valueInteger": 3},
        _obs("triceps-skinfold", 3.0, "cm", system=PCHR_FEATURE_SYSTEM),
        _obs("diabetes-pedigree-function", 0.5, "g", system=PCHR_FEATURE_SYSTEM),  # not a unit it converts
    ]
    vector = extract(DIABETES, resources, reference_date=ON)
    values = dict(zip(DIABETES.keys, vector.values, strict=True))
    assert values["glucose-2h-ogtt"] == 140.0
    assert values["diastolic-bp"] == 82.0  # half-way rounds up
    assert values["pregnancies"] == 3.0
    assert values["triceps-skinfold"] == 30.0
    assert math.isnan(values["diabetes-pedigree"])
    assert any("unit 'g' does not convert" in n for n in vector.notes)


def test_partial_birth_dates_and_birth_after_the_reference_date() -> None:
    age = DIABETES.index("age")
    for birth, expected in [("1990", 35.0), ("1990-02", 36.0), ("1990-03-02", 35.0)]:
        vector = extract(DIABETES, [{"resourceType": "Patient", "birthDate": birth}], reference_date=ON)
        assert vector.values[age] == expected, birth
    late = extract(DIABETES, [{"resourceType": "Patient", "birthDate": "2027-01-01"}], reference_date=ON)
    assert math.isnan(late.values[age])


def test_records_of_two_patients_are_refused() -> None:
    other = _obs("39156-5", 30.0, "kg/m2")
    other["subject"] = {"reference": "Patient/0x" + "cd" * 20}
    with pytest.raises(FeatureError, match="one patient's records; these name 2 patients"):
        extract(DIABETES, [_obs("39156-5", 30.0, "kg/m2"), other], reference_date=ON)


def test_to_fhir_puts_age_into_birth_date_across_leap_days() -> None:
    row = [math.nan] * 7
    row[DIABETES.index("age")] = 40
    for on in (date(2024, 2, 29), date(2026, 12, 31), date(2026, 1, 1)):
        resources = to_fhir(DIABETES, row, PATIENT, reference_date=on, effective=datetime(2025, 1, 1, tzinfo=UTC))
        assert extract(DIABETES, resources, reference_date=on).values[DIABETES.index("age")] == 40.0


# --- the scoring-grant catalogue --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(SPECS.values()))
def test_catalogue_bit_i_is_feature_i(spec: FeatureSpec) -> None:
    catalogue = catalogue_for(spec)
    assert catalogue.catalogue_id == f"pchr-features-{spec.name}-v1"
    assert [e.bit for e in catalogue.entries] == list(range(spec.n_features))
    assert [e.key for e in catalogue.entries] == list(spec.keys)
    assert catalogue.mask(spec.keys) == spec.full_mask
    assert catalogue.mask(spec.keys[:2]) == spec.mask(spec.keys[:2]) == 0b11


def test_a_used_mask_compares_bitwise_with_a_grant_scope(splits: dict[str, Split]) -> None:
    catalogue = catalogue_for(DIABETES)
    grant = catalogue.mask(["glucose-2h-ogtt", "bmi", "age", "diastolic-bp"])
    resources = to_fhir(DIABETES, splits["diabetes"].x_test[2], PATIENT, reference_date=ON)
    used = extract(DIABETES, resources, reference_date=ON, scope=grant).used_mask
    assert used & ~grant == 0
    for resource in resources:
        in_scope = catalogue.covers(grant, resource)
        if resource["resourceType"] == "Patient":
            assert in_scope
        else:
            coding = resource["code"]["coding"][0]
            assert in_scope == (coding["code"] in {"1518-0", "39156-5", "8462-4"})


def test_catalogue_round_trips_through_consent_provisions() -> None:
    catalogue = catalogue_for(DIABETES)
    granted = catalogue.granted(DIABETES.mask(["age", "bmi", "diabetes-pedigree"]))
    classes = [c.to_json() for e in granted if (c := e.provision_class()) is not None]
    codes = [{"coding": [e.code.to_json()]} for e in granted if e.code is not None]
    assert classes == [Coding("http://hl7.org/fhir/resource-types", "Patient").to_json()]
    assert catalogue.from_provision(classes, codes) == DIABETES.mask(["age", "bmi", "diabetes-pedigree"])
