"""Obtain the Medical Insurance Cost Prediction table (54 columns).

Three sources (``data.source`` in params.yaml):

- ``synthetic`` (offline default): a seeded generator with the schema, the published
  marginals and the published correlation table of the real file;
- ``csv``: a local copy of ``medical_insurance.csv``;
- ``kaggle``: a download of that file from Kaggle (needs network and credentials).

Real files are checked by sha256 and by schema before anything is written.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..core.errors import PipelineError
from ..core.io import atomic_path, sha256

COLUMNS = [
    "person_id", "age", "sex", "region", "urban_rural", "income", "education", "marital_status",
    "employment_status", "household_size", "dependents", "bmi", "smoker", "alcohol_freq",
    "visits_last_year", "hospitalizations_last_3yrs", "days_hospitalized_last_3yrs",
    "medication_count", "systolic_bp", "diastolic_bp", "ldl", "hba1c", "plan_type", "network_tier",
    "deductible", "copay", "policy_term_years", "policy_changes_last_2yrs", "provider_quality",
    "risk_score", "annual_medical_cost", "annual_premium", "monthly_premium", "claims_count",
    "avg_claim_amount", "total_claims_paid", "chronic_count", "hypertension", "diabetes", "asthma",
    "copd", "cardiovascular_disease", "cancer_history", "kidney_disease", "liver_disease",
    "arthritis", "mental_health", "proc_imaging_count", "proc_surgery_count", "proc_physio_count",
    "proc_consult_count", "proc_lab_count", "is_high_risk", "had_major_procedure",
]

CATEGORIES = {
    "sex": ["Female", "Male", "Other"],
    "region": ["North", "South", "East", "West", "Central"],
    "urban_rural": ["Urban", "Suburban", "Rural"],
    "education": ["No HS", "HS", "Some College", "Bachelors", "Masters", "Doctorate"],
    "marital_status": ["Single", "Married", "Divorced", "Widowed"],
    "employment_status": ["Employed", "Self-employed", "Unemployed", "Retired"],
    "smoker": ["Never", "Former", "Current"],
    "alcohol_freq": ["None", "Occasional", "Weekly", "Daily"],
    "plan_type": ["HMO", "PPO", "EPO", "POS"],
    "network_tier": ["Bronze", "Silver", "Gold", "Platinum"],
}

_DISEASES = [
    "hypertension", "diabetes", "asthma", "copd", "cardiovascular_disease", "cancer_history",
    "kidney_disease", "liver_disease", "arthritis", "mental_health",
]
BINARY = _DISEASES + ["is_high_risk", "had_major_procedure"]

# Category frequencies, aligned with CATEGORIES (smoker, plan_type, alcohol "None": schema file).
_WEIGHTS = {
    "sex": [0.49, 0.49, 0.02],
    "region": [0.20, 0.25, 0.20, 0.20, 0.15],
    "urban_rural": [0.60, 0.25, 0.15],
    "education": [0.10, 0.30, 0.25, 0.20, 0.10, 0.05],
    "marital_status": [0.35, 0.48, 0.12, 0.05],
    "employment_status": [0.60, 0.12, 0.08, 0.20],
    "smoker": [0.697, 0.182, 0.121],
    "alcohol_freq": [0.30, 0.35, 0.25, 0.10],
    "plan_type": [0.347, 0.352, 0.151, 0.150],
    "network_tier": [0.30, 0.40, 0.20, 0.10],
}

BMI_RANGE = (12.0, 50.4)
_PREMIUM_RANGE = (211.67, 10962.55)
_COST_RANGE = (55.55, 65724.90)
_HIGH_RISK_SHARE = 0.368
_FIX = "fix: point data.csv_path at the original medical_insurance.csv from Kaggle"


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def synthesize(rows: int, seed: int) -> pd.DataFrame:
    """A seeded synthetic table with the real schema and marginals.

    Its Pearson correlations follow the published correlation table of the real file: BMI is
    drawn independently of every raw attribute and reaches only the derived columns, through
    ``risk_score`` (a score of age, chronic conditions, smoking and BMI; ``is_high_risk`` is
    its top 36.8%), on which costs, premiums and claim amounts depend.
    """
    rng = np.random.default_rng(seed)
    n = rows
    idx = {c: rng.choice(len(v), size=n, p=_WEIGHTS[c]) for c, v in CATEGORIES.items()}
    col = {c: np.asarray(v, dtype=object)[idx[c]] for c, v in CATEGORIES.items()}

    col["person_id"] = rng.permutation(n) + 1
    age = np.clip(np.rint(rng.normal(47.5, 16.0, n)), 0, 100).astype(np.int64)
    col["age"] = age
    col["income"] = (np.rint(np.exp(np.log(36200) + 0.6 * rng.normal(size=n)) / 100) * 100).astype(np.int64)
    household = np.minimum(1 + rng.poisson(1.4, n), 8)
    col["household_size"] = household
    col["dependents"] = rng.binomial(household - 1, 0.785)
    bmi = np.round(np.clip(rng.normal(27.0, 5.0, n), *BMI_RANGE), 1)
    col["bmi"] = bmi

    a = (age - 47.5) / 16.0
    current, former = idx["smoker"] == 2, idx["smoker"] == 1
    daily_alcohol = idx["alcohol_freq"] == 3
    logits = np.stack([
        -1.39 + 0.3 * a,                                           # hypertension
        -2.5 + 0.6 * a,                                            # diabetes
        -2.8 + 0.3 * current,                                      # asthma
        -3.9 + 1.5 * current + 0.6 * former + 0.7 * a,             # copd
        -3.45 + 1.0 * a + 0.6 * current,                           # cardiovascular_disease
        -4.0 + 0.7 * a + 0.3 * current,                            # cancer_history
        -4.3 + 0.6 * a,                                            # kidney_disease
        -4.6 + 0.8 * daily_alcohol,                                # liver_disease
        -2.42 + 0.9 * a,                                           # arthritis
        np.full(n, -1.9),                                          # mental_health
    ], axis=1)
    flags = (rng.random((n, len(_DISEASES))) < _sigmoid(logits)).astype(np.int64)
    flags *= np.cumsum(flags, axis=1) <= 6                         # at most 6, as in the real file
    col.update(zip(_DISEASES, flags.T))
    chronic = flags.sum(axis=1)
    col["chronic_count"] = chronic
    hypertension, diabetes, arthritis = flags[:, 0], flags[:, 1], flags[:, 8]

    visits = rng.poisson(1.48 + 0.93 * chronic)
    col["visits_last_year"] = visits
    hosp = np.minimum(rng.poisson(0.1 + 0.15 * chronic), 3)
    col["hospitalizations_last_3yrs"] = hosp
    days = np.where(hosp > 0, np.minimum(hosp * (1 + rng.poisson(2.0, n)), 21), 0)
    col["days_hospitalized_last_3yrs"] = days
    col["medication_count"] = np.minimum(rng.poisson(0.52 + 0.48 * chronic), 11)
    e_sys, e_dia = rng.normal(size=(2, n))
    e_dia = 0.04 * e_sys + np.sqrt(1 - 0.04**2) * e_dia
    col["systolic_bp"] = np.clip(np.rint(117 + 7.3 * a + 18.2 * hypertension + 10 * e_sys), 80, 200).astype(np.int64)
    col["diastolic_bp"] = np.clip(np.rint(75 + 2.1 * a + 11.9 * hypertension + 7 * e_dia), 45, 130).astype(np.int64)
    col["ldl"] = np.round(np.clip(rng.normal(115 + 3.5 * a, 30), 40, 260), 1)
    col["hba1c"] = np.round(np.clip(rng.normal(5.4 + 1.84 * diabetes, 0.4), 4.0, 14.0), 2)

    tier = idx["network_tier"]
    col["deductible"] = np.array([250, 500, 1000, 1500, 2000, 3000, 5000])[rng.integers(0, 4, n) + 3 - tier]
    col["copay"] = np.array([0, 10, 20, 30, 40, 50])[rng.integers(0, 3, n) + 3 - tier]
    col["policy_term_years"] = rng.integers(1, 11, n)
    col["policy_changes_last_2yrs"] = np.minimum(rng.poisson(0.6, n), 5)
    col["provider_quality"] = np.round(np.clip(rng.normal(3.5, 0.6, n), 1.0, 5.0), 2)

    def std(x):
        return (x - x.mean()) / x.std()

    # Derived columns. risk_score: the normal CDF of a standardised score; BMI enters here only.
    smoke = std(np.array([0.0, 7.0, 30.0])[idx["smoker"]])
    score = 0.64 * a + 0.54 * std(chronic) + 0.33 * smoke + 0.13 * (bmi - 27.0) / 5.0 + 0.38 * rng.normal(size=n)
    risk = ndtr(score / score.std())
    col["risk_score"] = np.round(risk, 4)
    high = risk + rng.normal(0, 0.094, n)
    col["is_high_risk"] = (high > np.quantile(high, 1 - _HIGH_RISK_SHARE)).astype(np.int64)

    # Cost: 50 + lognormal, median ~2,100, log-sd 0.87 (mean ~3,000, heavy right tail).
    eff = 0.385 * std(risk) + 0.035 * smoke
    cost = 50 + np.exp(np.log(2045) + eff + rng.normal(0, np.sqrt(0.87**2 - eff.var()), n))
    cost = np.round(np.clip(cost, *_COST_RANGE), 2)
    col["annual_medical_cost"] = cost
    log_premium = np.log(1500) + 0.255 * std(risk) + np.array([-0.3, 0.0, 0.3, 0.6])[tier] + rng.normal(0, 0.35, n)
    premium = np.round(np.clip(np.exp(log_premium), *_PREMIUM_RANGE), 2)
    col["annual_premium"] = premium
    col["monthly_premium"] = np.round(premium / 12, 2)

    claims = rng.poisson(0.29 + 1.08 * visits + 0.3 * hosp)
    paid = np.where(claims > 0, cost * (rng.uniform(0.5, 0.8, n) + 0.05 * tier), 0.0)
    avg = np.round(paid / np.maximum(claims, 1) ** 0.63, 2)
    col["claims_count"] = claims
    col["avg_claim_amount"] = avg
    col["total_claims_paid"] = np.round(claims * avg, 2)

    col["proc_imaging_count"] = rng.poisson(0.3 + 0.1 * chronic)
    surgery = rng.poisson(0.01 + 0.038 * days)
    col["proc_surgery_count"] = surgery
    col["proc_physio_count"] = rng.poisson(0.3 + 0.8 * arthritis)
    col["proc_consult_count"] = rng.poisson(0.5 + 0.3 * chronic)
    col["proc_lab_count"] = rng.poisson(1.0 + 0.5 * chronic + diabetes)
    col["had_major_procedure"] = ((surgery > 0) | (days >= 7)).astype(np.int64)
    return pd.DataFrame({c: col[c] for c in COLUMNS})


def read_csv(path) -> pd.DataFrame:
    """Read a table; ``alcohol_freq`` "None" (NaN to pandas) stays the category "None"."""
    path = Path(path)
    fix = "fix: download medical_insurance.csv again from Kaggle, or set data.source: synthetic"
    if not path.is_file():
        raise PipelineError(f"{path}: file not found; {fix}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not a readable CSV ({str(exc).strip()}); {fix}") from None
    if df.empty:
        raise PipelineError(f"{path}: the file holds no rows; {fix}")
    if "alcohol_freq" in df:
        df["alcohol_freq"] = df["alcohol_freq"].astype(object).where(df["alcohol_freq"].notna(), "None")
    return df


def _names(cols) -> str:
    return ", ".join(f"'{c}'" for c in cols)


def validate(df: pd.DataFrame, source: str) -> None:
    """Raise one PipelineError (naming ``source``, the column and the fix) if the schema is off
    or a person_id is repeated (lines counted as in a CSV with a header)."""
    def fail(what, fix=_FIX):
        raise PipelineError(f"{source}: {what}; {fix}")

    missing = [c for c in COLUMNS if c not in df.columns]
    unexpected = [c for c in df.columns if c not in COLUMNS]
    if missing:
        fail(f"column{'s' * (len(missing) > 1)} {_names(missing)} missing")
    if unexpected:
        fail(f"unexpected column{'s' * (len(unexpected) > 1)} {_names(unexpected)}")
    if list(df.columns) != COLUMNS:
        i = next(i for i, (c, e) in enumerate(zip(df.columns, COLUMNS)) if c != e)
        fail(f"columns out of order: position {i} holds '{df.columns[i]}', expected '{COLUMNS[i]}'")
    for c in COLUMNS:
        if df[c].isna().any():
            fail(f"column '{c}' has {int(df[c].isna().sum())} missing values")
        if c in CATEGORIES:
            bad = sorted(set(df[c].astype(str)) - set(CATEGORIES[c]))
            if bad:
                fail(f"column '{c}' has unexpected values {_names(bad[:5])}; allowed: {_names(CATEGORIES[c])}")
        elif not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            bad = df[c][pd.to_numeric(df[c], errors="coerce").isna()]
            fail(f"column '{c}' is not numeric (e.g. {(bad if len(bad) else df[c]).iloc[0]!r})")
        elif c in BINARY and not df[c].isin([0, 1]).all():
            bad = sorted(set(df[c]) - {0, 1})
            fail(f"column '{c}' must hold only 0/1, found {bad[:5]}")
    lo, hi = df["bmi"].min(), df["bmi"].max()
    if lo < BMI_RANGE[0] or hi > BMI_RANGE[1]:
        fail(f"column 'bmi' spans {lo}..{hi}, outside {BMI_RANGE[0]}..{BMI_RANGE[1]}")
    ids = df["person_id"].to_numpy()
    repeated = df["person_id"].duplicated().to_numpy()
    if repeated.any():
        i = int(np.argmax(repeated))
        j = int(np.argmax(ids == ids[i]))
        how = "is an exact copy of" if df.iloc[i].equals(df.iloc[j]) else "repeats the person_id of"
        k = int(repeated.sum())
        fail(f"person_id {ids[i]} repeated: line {i + 2} {how} line {j + 2} ({k} repeated "
             f"row{'s' * (k > 1)} in all), so one person could sit on both sides of the train/test split",
             "fix: drop the repeated rows (keep one per person_id) and set data.sha256 to the new "
             "file's checksum")


def _install(path: Path, data_params: dict, out: Path, source: str) -> dict:
    """Check ``path`` (sha256, schema) and copy its bytes to ``out`` atomically."""
    expected, actual = data_params["sha256"], sha256(path)
    if expected and actual != expected:
        raise PipelineError(
            f"{path}: sha256 mismatch, expected {expected}, got {actual}; fix: replace the file with "
            f"the original medical_insurance.csv, or set data.sha256 to {actual} (\"\" skips the check)")
    df = read_csv(path)
    validate(df, str(path))
    with atomic_path(out) as tmp:
        shutil.copyfile(path, tmp)
    return {"source": source, "rows": len(df), "sha256": actual}


def _credentials() -> tuple[str, str] | None:
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return user, key
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle") / "kaggle.json"
    try:
        cfg = json.loads(config.read_text())
        return cfg["username"], cfg["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _download(slug: str, name: str, dest: Path) -> Path:
    """Download ``name`` of Kaggle data set ``slug`` into ``dest``; return the CSV's path."""
    fix = ("fix: download it by hand from https://www.kaggle.com/datasets/" + slug
           + ", then set data.source: csv and data.csv_path to the file")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        KaggleApi = None
    try:
        if KaggleApi is not None:
            api = KaggleApi()
            api.authenticate()
            api.dataset_download_file(slug, name, path=str(dest), quiet=True)
        else:
            cred = _credentials()
            if cred is None:
                raise PipelineError(
                    f"kaggle: no credentials (env KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json); {fix}")
            url = f"https://www.kaggle.com/api/v1/datasets/download/{slug}/{name}"
            req = urllib.request.Request(url)
            token = base64.b64encode(":".join(cred).encode()).decode()
            req.add_unredirected_header("Authorization", f"Basic {token}")
            with urllib.request.urlopen(req, timeout=120) as resp, open(dest / "download", "wb") as f:
                shutil.copyfileobj(resp, f)
    except PipelineError:
        raise
    except Exception as exc:  # network, HTTP, credential errors from either client
        raise PipelineError(f"kaggle: download of {slug}/{name} failed ({exc}); {fix}") from None
    for got in sorted(dest.iterdir()):
        if zipfile.is_zipfile(got):
            with zipfile.ZipFile(got) as z:
                member = name if name in z.namelist() else next(
                    (m for m in z.namelist() if m.endswith(".csv")), None)
                if member is None:
                    raise PipelineError(f"kaggle: the archive for {slug} holds no CSV; {fix}")
                with z.open(member) as src, open(dest / f"{name}.extracted", "wb") as f:
                    shutil.copyfileobj(src, f)
            return dest / f"{name}.extracted"
    got = dest / name if (dest / name).is_file() else dest / "download"
    if not got.is_file():
        raise PipelineError(f"kaggle: {slug}/{name} was not downloaded; {fix}")
    return got


def acquire(data_params: dict, seed: int, out: Path) -> dict:
    """Write the table to ``out`` (atomically); return ``{"source", "rows", "sha256"}``."""
    source, out = data_params["source"], Path(out)
    if source == "synthetic":
        df = synthesize(data_params["rows"], seed)
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
        return {"source": source, "rows": len(df), "sha256": sha256(out)}
    if source == "csv":
        path = Path(data_params["csv_path"])
        if not path.is_file():
            raise PipelineError(
                f"data.csv_path = '{path}': file not found; fix: download medical_insurance.csv from "
                f"https://www.kaggle.com/datasets/{data_params['kaggle_slug']} to that path, "
                "or set data.source: synthetic")
        return _install(path, data_params, out, source)
    if source == "kaggle":
        with tempfile.TemporaryDirectory() as tmp:
            return _install(_download(data_params["kaggle_slug"], data_params["kaggle_file"], Path(tmp)),
                            data_params, out, source)
    raise PipelineError(f"data.source = {source!r}: unknown; fix: set it to synthetic, csv or kaggle")
