"""Logs are one JSON object per line, carry the object and the platform's request id."""

from __future__ import annotations

import json

import pytest

from tests.integration.support import Env


@pytest.mark.manual_operator
def test_json_logs_name_the_object_and_the_request_id(env: Env) -> None:
    operator = env.start_operator("--log-format", "json")
    env.create_ready()
    operator.stop()

    records = [json.loads(line) for line in operator.log().splitlines() if line.startswith("{")]
    assert records, operator.log()[-2000:]
    assert len(records) == len([line for line in operator.log().splitlines() if line.strip()])
    [post] = [r for r in records if r["message"].startswith("POST /instances ->")]
    assert post["object"]["namespace"] == env.namespace
    assert post["object"]["name"] == "crm"
    request_id = post["message"].rsplit("request id ", 1)[1].rstrip(")")
    assert len(request_id) == 24  # the simulator's ids look like the platform's (24 hex digits)
