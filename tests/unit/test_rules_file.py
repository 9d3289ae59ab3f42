"""The rules file: every number of scoring.md in one YAML file, validated on load with a sentence
naming the key, versioned by its SHA-256."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from ecredit import rules as rules_mod
from ecredit.settings import DEFAULT_RULES

pytestmark = pytest.mark.unit


def write(tmp_path, data) -> str:
    p = tmp_path / "rules.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return str(p)


@pytest.fixture
def data():
    return yaml.safe_load(open(DEFAULT_RULES, encoding="utf-8"))


def test_default_rules_hold_the_spec_numbers(default_rules):
    r = default_rules
    assert r.version == hashlib.sha256(open(DEFAULT_RULES, "rb").read()).hexdigest()
    assert r.get("classes.thresholds") == {"A": 850, "B": 700, "C": 550}
    assert r.get("conduct.points_by_severity") == {1: 20, 2: 60, 3: 150, 4: 400}
    assert r.get("evaluation.weights") == {"overall_satisfaction": 0.40, "product_quality": 0.30,
                                           "brand_reputation": 0.15, "after_sales": 0.15}
    assert {c: m["sampling_ratio"] for c, m in r.get("measures.classes").items()} == {
        "A": "0.03", "B": "0.10", "C": "0.30", "D": "0.80"}
    assert r.get("plan.schedule") == "monthly"


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d["conduct"].pop("points_by_severity"), "conduct.points_by_severity"),
    (lambda d: d["classes"].update(thresholds={"A": 700, "B": 850, "C": 550}), "classes.thresholds"),
    (lambda d: d["measures"]["classes"]["D"].update(sampling_ratio="1.5"), "measures.classes.D.sampling_ratio"),
    (lambda d: d["measures"]["classes"]["C"].update(measures=["NO_SUCH_MEASURE"]), "measures.classes.C.measures"),
    (lambda d: d["measures"]["classes"].pop("B"), "measures.classes"),
    (lambda d: d["measures"].update(serious_list=["GOV_FUNDING", "GOV_FUNDING"]), "measures.serious_list"),
    (lambda d: d["measures"]["codes"]["GOV_FUNDING"].update(dept="nowhere"), "measures.codes.GOV_FUNDING.dept"),
    (lambda d: d["measures"]["codes"]["NO_COMMITMENT"].pop("legal_basis"), "measures.codes.NO_COMMITMENT.legal_basis"),
    (lambda d: d["measures"]["codes"]["CUSTOMS_CLEARANCE"].update(legal_basis=" "),
     "measures.codes.CUSTOMS_CLEARANCE.legal_basis"),
    (lambda d: d["measures"].pop("codes"), "measures.codes"),
    (lambda d: d["plan"].update(schedule="weekly"), "plan.schedule"),
    (lambda d: d["class_rules"]["R_SEV4"].update({"class": "E"}), "class_rules.R_SEV4.class"),
    (lambda d: d["identity"].update(verified_days="a year"), "identity.verified_days"),
    (lambda d: d["evaluation"]["weights"].pop("after_sales"), "evaluation.weights"),
])
def test_a_malformed_file_names_the_key(tmp_path, data, mutate, key):
    mutate(data)
    with pytest.raises(rules_mod.RulesError) as e:
        rules_mod.load(write(tmp_path, data))
    assert key in str(e.value) and "\n" not in str(e.value)
