import json
import logging

import pytest

from revops_pipelines.credentials import api_key_from_env, basic_from_env, client_credentials_from_env
from revops_pipelines.errors import ConfigurationError
from revops_pipelines.logging import JsonFormatter, RedactingFilter, get_logger, redact, trace


def _capture(logger_name: str):
    records: list[str] = []

    class H(logging.Handler):
        def emit(self, record):
            records.append(JsonFormatter().format(record))

    h = H()
    h.addFilter(RedactingFilter())
    logger = get_logger(logger_name)
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    return logger, records


def test_registered_secrets_never_reach_a_log_record():
    cred = basic_from_env(
        "GONG_KEY", "GONG_SECRET", env={"GONG_KEY": "key-1", "GONG_SECRET": "very-secret-value"}
    )
    logger, records = _capture("test.redaction")
    logger.info(f"calling gong with {cred.headers()} and secret very-secret-value")
    out = "\n".join(records)
    assert "very-secret-value" not in out
    assert cred.encoded() not in out
    assert "***" in out


@pytest.mark.parametrize(
    "text",
    [
        "password=hunter22",
        "client_secret: abcdef123",
        '{"api_key": "zzz999yyy"}',
        "Authorization: Bearer abc.def.ghi123",
    ],
)
def test_credential_shaped_values_are_masked(text):
    masked = redact(text)
    for secret in ("hunter22", "abcdef123", "zzz999yyy", "abc.def.ghi123"):
        assert secret not in masked


def test_records_carry_the_trace_id():
    logger, records = _capture("test.trace")
    with trace("trace-abc", run_id="run-1"):
        logger.info("inside")
    rec = json.loads(records[-1])
    assert rec["trace_id"] == "trace-abc"
    assert rec["run_id"] == "run-1"


def test_missing_credential_names_the_variable():
    with pytest.raises(ConfigurationError, match="HUBSPOT_ACCESS_TOKEN"):
        api_key_from_env("HUBSPOT_ACCESS_TOKEN", env={})
    with pytest.raises(ConfigurationError, match="SF_CLIENT_SECRET"):
        client_credentials_from_env("SF_CLIENT_ID", "SF_CLIENT_SECRET", env={"SF_CLIENT_ID": "x"})


def test_secret_values_do_not_appear_in_repr():
    cred = client_credentials_from_env("ID", "SECRET", env={"ID": "abc", "SECRET": "do-not-print-me"})
    assert "do-not-print-me" not in repr(cred)
    assert "do-not-print-me" not in str(cred.model_dump())
    assert api_key_from_env("T", env={"T": "tok-123456"}).headers()["Authorization"] == "Bearer tok-123456"
