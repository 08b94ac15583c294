"""Tests for pipeline.data: synthetic schema and marginals, CSV reading, validation, acquire."""
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.tabular import insurance as data
from pipeline.core.errors import PipelineError

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "shared/reference/insurance_schema.md"
HEADER = (
    "person_id,age,sex,region,urban_rural,income,education,marital_status,employment_status,"
    "household_size,dependents,bmi,smoker,alcohol_freq,visits_last_year,hospitalizations_last_3yrs,"
    "days_hospitalized_last_3yrs,medication_count,systolic_bp,diastolic_bp,ldl,hba1c,plan_type,"
    "network_tier,deductible,copay,policy_term_years,policy_changes_last_2yrs,provider_quality,"
    "risk_score,annual_medical_cost,annual_premium,monthly_premium,claims_count,avg_claim_amount,"
    "total_claims_paid,chronic_count,hypertension,diabetes,asthma,copd,cardiovascular_disease,"
    "cancer_history,kidney_disease,liver_disease,arthritis,mental_health,proc_imaging_count,"
    "proc_surgery_count,proc_physio_count,proc_consult_count,proc_lab_count,is_high_risk,"
    "had_major_procedure"
).split(",")
ROWS = 2000


@pytest.fixture(scope="module")
def small():
    return data.synthesize(ROWS, 0)


@pytest.fixture(scope="module")
def big():
    return data.synthesize(100_000, 0)


def _params(**kw):
    p = {"source": "csv", "rows": ROWS, "csv_path": "", "kaggle_slug": "owner/set",
         "kaggle_file": "medical_insurance.csv", "sha256": ""}
    p.update(kw)
    return p


def _write(df, path):
    df.to_csv(path, index=False)
    return path


# --- schema -----------------------------------------------------------------------------

def test_header_matches_literal_copy(small):
    assert len(HEADER) == 54
    assert data.COLUMNS == HEADER
    assert list(small.columns) == HEADER


def test_header_matches_schema_doc(small):
    if not SCHEMA_DOC.is_file():
        pytest.skip(f"{SCHEMA_DOC} absent")
    line = next(s for s in SCHEMA_DOC.read_text().splitlines() if s.strip().startswith("`person_id,"))
    assert list(small.columns) == line.strip().strip("`").split(",")


def test_categories_and_binary_lists():
    assert set(data.CATEGORIES) == {"sex", "region", "urban_rural", "education", "marital_status",
                                    "employment_status", "smoker", "alcohol_freq", "plan_type",
                                    "network_tier"}
    assert "None" in data.CATEGORIES["alcohol_freq"]
    assert len(data.BINARY) == 12 and set(data.BINARY) <= set(data.COLUMNS)
    assert not set(data.BINARY) & set(data.CATEGORIES)


# --- synthetic generator ----------------------------------------------------------------------

def test_deterministic_per_seed(small):
    pd.testing.assert_frame_equal(small, data.synthesize(ROWS, 0))
    assert not small.equals(data.synthesize(ROWS, 1))


def test_value_sets_and_types(small):
    for col, allowed in data.CATEGORIES.items():
        assert set(small[col]) <= set(allowed), col
    for col in data.BINARY:
        assert set(small[col]) <= {0, 1}, col
    for col in set(data.COLUMNS) - set(data.CATEGORIES):
        assert pd.api.types.is_numeric_dtype(small[col]), col
    assert not small.isna().any().any()
    ids = small["person_id"]
    assert ids.is_unique and pd.api.types.is_integer_dtype(ids) and not ids.is_monotonic_increasing


def test_bmi_marginals(big):
    bmi = big["bmi"]
    assert bmi.min() >= 12.0 and bmi.max() <= 50.4
    assert np.allclose(bmi, bmi.round(1))
    assert abs(bmi.mean() - 27.0) < 0.1
    assert 4.8 < bmi.std() < 5.2
    subset = bmi.sample(frac=0.6, random_state=0)
    assert 32.9 <= subset.quantile(0.9) <= 33.9


def test_other_marginals(big):
    n = len(big)
    assert big["age"].between(0, 100).all() and abs(big["age"].mean() - 47.5) < 1.0
    assert 34_000 <= big["income"].median() <= 38_500 and (big["income"] % 100 == 0).all()
    assert big["hospitalizations_last_3yrs"].between(0, 3).all()
    assert big["days_hospitalized_last_3yrs"].between(0, 21).all()
    assert big["medication_count"].between(0, 11).all()
    cost = big["annual_medical_cost"]
    assert cost.min() > 50 and 2700 < cost.mean() < 3300 and cost.max() > 10 * cost.median()
    assert big["annual_premium"].between(211.67, 10962.55).all()
    assert np.allclose(big["monthly_premium"], (big["annual_premium"] / 12).round(2))
    assert abs(big["is_high_risk"].mean() - 0.368) < 0.01
    assert (big["dependents"] <= big["household_size"] - 1).all() and (big["dependents"] >= 0).all()
    diseases = data.BINARY[:10]
    assert (big["chronic_count"] == big[diseases].sum(axis=1)).all()
    freq = big["smoker"].value_counts() / n
    assert abs(freq["Never"] - 0.697) < 0.01 and abs(freq["Current"] - 0.121) < 0.01
    freq = big["plan_type"].value_counts() / n
    assert abs(freq["HMO"] - 0.347) < 0.01 and abs(freq["EPO"] - 0.151) < 0.01
    assert abs((big["alcohol_freq"] == "None").mean() - 0.30) < 0.01


# The real file's published correlation table (Pearson over all rows, categoricals encoded as
# below) and prevalences: the target distribution of the synthetic default.
ENCODING = {
    "smoker": {"Never": 0, "Former": 7, "Current": 30},
    "alcohol_freq": {"None": 0, "Occasional": 2, "Weekly": 7, "Daily": 30},
    "education": {c: i for i, c in enumerate(data.CATEGORIES["education"])},
}
BMI_INDEPENDENT_OF = [  # |r| <= 0.009 in the real file
    "age", "income", "education", "household_size", "dependents", "smoker", "alcohol_freq",
    "visits_last_year", "hospitalizations_last_3yrs", "medication_count", "systolic_bp",
    "diastolic_bp", "ldl", "hba1c", "chronic_count", *data.BINARY[:10],
]
CORRELATIONS = {
    ("bmi", "risk_score"): 0.109, ("bmi", "is_high_risk"): 0.085,
    ("bmi", "annual_medical_cost"): 0.043, ("bmi", "annual_premium"): 0.042,
    ("bmi", "monthly_premium"): 0.042, ("bmi", "avg_claim_amount"): 0.028,
    ("bmi", "total_claims_paid"): 0.026,
    ("age", "systolic_bp"): 0.555, ("age", "diastolic_bp"): 0.304, ("age", "risk_score"): 0.721,
    ("age", "is_high_risk"): 0.559, ("age", "ldl"): 0.111,
    ("systolic_bp", "diastolic_bp"): 0.448,
    ("hypertension", "systolic_bp"): 0.557, ("hypertension", "diastolic_bp"): 0.561,
    ("diabetes", "hba1c"): 0.791,
    ("risk_score", "chronic_count"): 0.666, ("risk_score", "smoker"): 0.309,
    ("risk_score", "visits_last_year"): 0.313, ("risk_score", "medication_count"): 0.265,
    ("risk_score", "is_high_risk"): 0.821,
    ("smoker", "is_high_risk"): 0.265, ("smoker", "annual_medical_cost"): 0.161,
    ("visits_last_year", "claims_count"): 0.740, ("visits_last_year", "chronic_count"): 0.469,
    ("medication_count", "chronic_count"): 0.396,
    ("hospitalizations_last_3yrs", "days_hospitalized_last_3yrs"): 0.886,
    ("hospitalizations_last_3yrs", "had_major_procedure"): 0.387,
    ("days_hospitalized_last_3yrs", "had_major_procedure"): 0.473,
    ("household_size", "dependents"): 0.886,
    **{("bmi", c): 0.0 for c in BMI_INDEPENDENT_OF},
}
PREVALENCES = {"hypertension": 0.203, "diabetes": 0.086, "asthma": 0.059, "copd": 0.036,
               "cardiovascular_disease": 0.051, "arthritis": 0.108, "mental_health": 0.130,
               "is_high_risk": 0.368}


def _encoded(df):
    return df.assign(**{c: df[c].map(codes) for c, codes in ENCODING.items()})


def test_correlations_match_published_table(big):
    enc = _encoded(big)
    assert not enc[list(ENCODING)].isna().any().any()
    off = {pair: round(enc[pair[0]].corr(enc[pair[1]]), 3) for pair in CORRELATIONS}
    off = {pair: (r, CORRELATIONS[pair]) for pair, r in off.items() if abs(r - CORRELATIONS[pair]) > 0.03}
    assert not off, f"(measured, target) off by more than 0.03: {off}"


def test_prevalences_and_counts(big):
    for col, share in PREVALENCES.items():
        assert abs(big[col].mean() - share) < 0.015, col
    chronic = big["chronic_count"]
    assert abs(chronic.mean() - 0.72) < 0.05 and chronic.max() == 6
    assert 100 <= (big["age"] == 0).sum() <= 230  # about 165 in the real file
    assert np.allclose(big["total_claims_paid"], (big["claims_count"] * big["avg_claim_amount"]).round(2))


def test_cost_quartiles(big):
    cost = big["annual_medical_cost"]
    assert 55.55 <= cost.min() and cost.max() <= 65724.90
    assert 2850 < cost.std() < 3400
    for q, real in [(0.25, 1175.12), (0.5, 2082.58), (0.75, 3707.96)]:
        assert abs(cost.quantile(q) / real - 1) < 0.05, q


def test_person_ids_never_repeat(big):
    assert big["person_id"].is_unique and big["person_id"].between(1, len(big)).all()


# --- read_csv / validate ----------------------------------------------------------------

def test_alcohol_none_round_trips(small, tmp_path):
    path = _write(small, tmp_path / "t.csv")
    assert "None" in path.read_text()
    back = data.read_csv(path)
    assert back["alcohol_freq"].isna().sum() == 0
    assert (back["alcohol_freq"] == "None").sum() == (small["alcohol_freq"] == "None").sum() > 0
    data.validate(back, str(path))


@pytest.mark.parametrize("content", [None, "", "a,b\n1,\"2\n"])
def test_read_csv_bad_files(tmp_path, content):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PipelineError, match="bad.csv"):
        data.read_csv(path)


def test_validate_passes_on_synthetic(small):
    data.validate(small, "synthetic")


@pytest.mark.parametrize("break_it, column", [
    (lambda d: d.drop(columns="bmi"), "bmi"),
    (lambda d: d.assign(extra=1), "extra"),
    (lambda d: d[[d.columns[1], d.columns[0], *d.columns[2:]]], "person_id"),
    (lambda d: d.assign(region=d["region"].where(d.index != 5, "Atlantis")), "region"),
    (lambda d: d.assign(bmi=d["bmi"].astype(str).where(d.index != 3, "fat")), "bmi"),
    (lambda d: d.assign(bmi=d["bmi"].where(d.index != 7, 80.0)), "bmi"),
    (lambda d: d.assign(diabetes=d["diabetes"].where(d.index != 2, 2)), "diabetes"),
    (lambda d: d.assign(age=d["age"].where(d.index != 4, np.nan)), "age"),
])
def test_validate_rejects(small, break_it, column):
    with pytest.raises(PipelineError) as exc:
        data.validate(break_it(small.copy()), "data/raw/x.csv")
    msg = str(exc.value)
    assert "data/raw/x.csv" in msg and f"'{column}'" in msg and "fix:" in msg
    if "Atlantis" in msg:
        assert msg.count("Atlantis") == 1


def test_early_row_fixture_validates(small, tmp_path):
    row = small.iloc[0].to_dict()
    row.update(age=52, sex="Female", region="North", urban_rural="Suburban", income=22700,
               education="Doctorate", marital_status="Married", employment_status="Retired",
               household_size=3, dependents=1, bmi=27.4, smoker="Never", alcohol_freq="None",
               annual_medical_cost=6938.06, person_id=small["person_id"].max() + 1)
    df = pd.concat([pd.DataFrame([row]), small.iloc[1:50]], ignore_index=True)[data.COLUMNS]
    path = _write(df, tmp_path / "medical_insurance.csv")
    back = data.read_csv(path)
    data.validate(back, str(path))
    first = back.iloc[0]
    assert first["bmi"] == 27.4 and first["alcohol_freq"] == "None"
    assert first["annual_medical_cost"] == 6938.06 and first["income"] == 22700


def test_validate_rejects_repeated_person_id(small, tmp_path):
    df = small.iloc[:20].copy()
    df.loc[df.index[12], "person_id"] = df["person_id"].iloc[4]  # line 14 reuses line 6's id
    path = _write(df, tmp_path / "medical_insurance.csv")
    with pytest.raises(PipelineError) as exc:
        data.validate(data.read_csv(path), str(path))
    msg = str(exc.value)
    pid = df["person_id"].iloc[4]
    assert str(path) in msg and f"person_id {pid} " in msg and "line 14" in msg and "line 6" in msg
    assert "fix: drop the repeated rows (keep one per person_id)" in msg and "data.sha256" in msg


def test_validate_rejects_repeated_row(small):
    df = pd.concat([small.iloc[:10], small.iloc[[3]]], ignore_index=True)
    with pytest.raises(PipelineError, match=f"person_id {small['person_id'].iloc[3]} repeated: "
                                            "line 12 is an exact copy of line 5"):
        data.validate(df, "data/raw/x.csv")


def test_acquire_csv_repeated_rows_writes_nothing(small, tmp_path):
    src = _write(pd.concat([small, small.iloc[[0]]], ignore_index=True), tmp_path / "medical_insurance.csv")
    out = tmp_path / "insurance.csv"
    with pytest.raises(PipelineError, match="medical_insurance.csv: person_id"):
        data.acquire(_params(csv_path=str(src)), 0, out)
    assert not out.exists()


# --- acquire ------------------------------------------------------------------------------

def test_acquire_synthetic(tmp_path):
    out = tmp_path / "data" / "insurance.csv"
    info = data.acquire(_params(source="synthetic"), 0, out)
    assert info["rows"] == ROWS and info["source"] == "synthetic"
    assert info["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    data.validate(data.read_csv(out), str(out))
    assert data.acquire(_params(source="synthetic"), 0, tmp_path / "again.csv")["sha256"] == info["sha256"]


def test_acquire_csv_right_sha(small, tmp_path):
    src = _write(small, tmp_path / "medical_insurance.csv")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "out" / "insurance.csv"
    info = data.acquire(_params(csv_path=str(src), sha256=digest), 0, out)
    assert out.read_bytes() == src.read_bytes()
    assert info == {"source": "csv", "rows": ROWS, "sha256": digest}


def test_acquire_csv_wrong_sha_writes_nothing(small, tmp_path):
    src = _write(small, tmp_path / "medical_insurance.csv")
    out = tmp_path / "out" / "insurance.csv"
    with pytest.raises(PipelineError, match="sha256") as exc:
        data.acquire(_params(csv_path=str(src), sha256="0" * 64), 0, out)
    assert "0" * 64 in str(exc.value) and hashlib.sha256(src.read_bytes()).hexdigest() in str(exc.value)
    assert not out.exists()


def test_acquire_csv_missing(tmp_path):
    out = tmp_path / "insurance.csv"
    with pytest.raises(PipelineError, match="csv_path"):
        data.acquire(_params(csv_path=str(tmp_path / "nope.csv")), 0, out)
    assert not out.exists()


def test_acquire_csv_bad_schema_writes_nothing(small, tmp_path):
    src = _write(small.drop(columns="ldl"), tmp_path / "medical_insurance.csv")
    out = tmp_path / "insurance.csv"
    with pytest.raises(PipelineError, match="'ldl'"):
        data.acquire(_params(csv_path=str(src)), 0, out)
    assert not out.exists()


def test_acquire_kaggle_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaggle", None)  # force the urllib path
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "insurance.csv"
    with pytest.raises(PipelineError, match="data.source: csv"):
        data.acquire(_params(source="kaggle"), 0, out)
    assert not out.exists()


def test_acquire_kaggle_zip_response(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaggle", None)
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    csv_bytes = small.to_csv(index=False).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("medical_insurance.csv", csv_bytes)
    seen = {}

    def fake_urlopen(req, timeout):
        seen["url"], seen["auth"] = req.full_url, req.unredirected_hdrs.get("Authorization")
        return io.BytesIO(buf.getvalue())

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    out = tmp_path / "insurance.csv"
    info = data.acquire(_params(source="kaggle"), 0, out)
    assert seen["url"].endswith("/datasets/download/owner/set/medical_insurance.csv")
    assert seen["auth"].startswith("Basic ")
    assert out.read_bytes() == csv_bytes and info["rows"] == ROWS
