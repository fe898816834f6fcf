"""A missing prerequisite skips a test locally, naming what was not checked, and fails it under CI."""

import pytest

import prerequisites


def test_missing_prerequisite_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(prerequisites, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="the data is missing, so the floors was not checked"):
        prerequisites.missing("the data", "the floors")
    monkeypatch.setattr(prerequisites, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI must run it"):
        prerequisites.missing("the data", "the floors")
