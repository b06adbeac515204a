"""`make conformance`'s own rules (dev/devstack/conformance.py): which scenario runs on which wire,
reading the suite's checks, the verdicts and the exit status. The suite itself runs in
`make conformance`, against a stack of its own."""

from __future__ import annotations

import json
import subprocess

import pytest

from devstack import conformance
from devstack.conformance import ConformanceError, Outcome, _Forms, applicable_wires, read_checks

LISTED = """Server scenarios (test against a server):
  - server-initialize [2025-06-18,2025-11-25]
  - server-session-lifecycle [2025-03-26,2025-06-18,2025-11-25]
  - server-stateless [2026-07-28]
  - ping [2025-06-18,2025-11-25]
  - tools-list [2025-06-18,2025-11-25,2026-07-28]
  - resources-list [2025-06-18,2025-11-25,2026-07-28]
  - sep-2164-resource-not-found [2026-07-28]
  - prompts-list [2025-06-18,2025-11-25,2026-07-28]
  - dns-rebinding-protection [2025-11-25,2026-07-28]
  - caching [2026-07-28]
  - http-header-validation [2026-07-28]
  - tasks-lifecycle [extension]
"""


def _listing(monkeypatch, text):
    def run(command, **_):
        assert command[2:] == ["list", "--server"]
        return subprocess.CompletedProcess(command, 0, stdout=text, stderr="")

    monkeypatch.setattr(conformance.subprocess, "run", run)


def test_each_scenario_runs_on_the_supported_wires_it_applies_to(monkeypatch, tmp_path):
    _listing(monkeypatch, LISTED)
    wires = applicable_wires(tmp_path / "node", tmp_path / "cli.js")
    assert wires["server-session-lifecycle"] == ("2025-06-18", "2025-11-25")  # not 2025-03-26
    assert wires["tools-list"] == ("2025-06-18", "2025-11-25", "2026-07-28")
    assert wires["caching"] == ("2026-07-28",)
    assert wires["tasks-lifecycle"] == ()  # an extension: on no dated wire
    assert sum(len(wires[s]) for s in conformance.REQUIRED) == 20


def test_a_required_scenario_the_suite_lacks_is_an_error(monkeypatch, tmp_path):
    _listing(monkeypatch, LISTED.replace("  - caching [2026-07-28]\n", ""))
    with pytest.raises(ConformanceError, match="no scenario caching"):
        applicable_wires(tmp_path / "node", tmp_path / "cli.js")


def _checks(directory, name, statuses):
    run = directory / f"server-{name}-2026-01-01T00-00-00-000Z"
    run.mkdir(parents=True)
    checks = [
        {"id": f"check-{i}", "status": s, "errorMessage": f"problem {i}" if s == "FAILURE" else None}
        for i, s in enumerate(statuses)
    ]
    if "INFO" in statuses:
        checks[statuses.index("INFO")]["details"] = {"message": "stateless: does not apply"}
    (run / "checks.json").write_text(json.dumps(checks))


@pytest.mark.parametrize(
    ("statuses", "exit_code", "verdict", "shown"),
    [
        (["SUCCESS", "SUCCESS"], 0, "pass", "2/2"),
        (["SUCCESS", "WARNING"], 0, "pass", "1/1, 1 warn"),
        (["SUCCESS", "FAILURE"], 1, "FAIL", "1/2"),
        (["INFO"], 0, "n/a", "0/0"),
        (["SUCCESS"], 1, "FAIL", "1/1"),  # the suite's own exit status counts too
    ],
)
def test_verdicts_from_the_suites_checks(tmp_path, statuses, exit_code, verdict, shown):
    _checks(tmp_path, "ping", statuses)
    outcome = Outcome("ping", "2025-11-25", required=True, exit_code=exit_code)
    read_checks(tmp_path, outcome)
    assert outcome.verdict == verdict and outcome.checks == shown
    assert outcome.failed is (verdict == "FAIL")
    if "FAILURE" in statuses:
        assert outcome.failures == ["FAILURE check-1: problem 1"]
    if verdict == "n/a":
        assert outcome.note == "stateless: does not apply"


def test_read_checks_keeps_to_the_named_runs(tmp_path):
    _checks(tmp_path, "a", ["SUCCESS"])
    _checks(tmp_path, "b", ["FAILURE"])
    outcome = Outcome("a", "authorization", required=True)
    read_checks(tmp_path, outcome, "server-a-")
    assert outcome.counts == {"SUCCESS": 1}


def test_the_sign_in_and_consent_forms_are_read_as_a_browser_reads_them():
    parser = _Forms()
    parser.feed(
        '<form method="post" action="/oauth/authorize"><input type="hidden" name="csrf" value="t">'
        '<input name="username"><input type="password" name="password">'
        '<button type="submit" name="decision" value="approve">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button></form>'
    )
    [form] = parser.forms
    assert form.method == "post" and form.action == "/oauth/authorize"
    assert form.fields == {"csrf": "t", "username": "", "password": ""}
    assert ("decision", "approve") in form.buttons
