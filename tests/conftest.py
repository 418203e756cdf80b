"""Hypothesis profiles (CI runs more examples, derandomized so a failure reproduces), and a
laboratory table that derives eGFR from creatinine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from b12lab import tables

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

ROOT = Path(__file__).resolve().parents[1]
DERIVED_EGFR = """
[derived.egfr]
equation = "ckd-epi-2021-creatinine"
creatinine_unit = "mg/dL"
numerator = 142
kappa = { female = 0.7, male = 0.9 }
alpha = { female = -0.241, male = -0.302 }
exponent_above_kappa = -1.200
age_base = 0.9938
female_factor = 1.012
min_age = 18
source = "National Kidney Foundation, CKD-EPI Creatinine Equation (2021), \
kidney.org/ckd-epi-creatinine-equation-2021; Inker LA et al. N Engl J Med 2021;385:1737-1749; \
NIDDK: adults 18 and older"
"""
"""The CKD-EPI 2021 constants as a table gives them (National Kidney Foundation)."""


def egfr_lab_text(derived: str = DERIVED_EGFR, *, version: str = "99") -> str:
    """``generic-us-lab@1`` as a new version with ``derived`` appended."""
    text = (ROOT / "reference_ranges" / "generic-us-lab" / "1.toml").read_text(encoding="utf-8")
    return text.replace('version = "1"', f'version = "{version}"', 1) + derived


@pytest.fixture(scope="session")
def egfr_lab(tmp_path_factory: pytest.TempPathFactory) -> tables.Table:
    """``generic-us-lab@99``: the generic laboratory table deriving eGFR from creatinine."""
    path = tmp_path_factory.mktemp("egfr") / "generic-us-lab-99.toml"
    path.write_text(egfr_lab_text(), encoding="utf-8")
    return tables.load_file(path)
