"""Credential handling per kind: API key / bearer token, HTTP basic, OAuth 2.0 client credentials.

Every credential is read from environment variables (or passed from resource config, which in turn
uses ``dg.EnvVar``) through one function per kind. Secret values are :class:`pydantic.SecretStr`, are
registered with the log redactor on creation and never appear in ``repr``/``str``. A missing variable
raises :class:`ConfigurationError` naming it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from pydantic import SecretStr

from revops_pipelines.errors import ConfigurationError
from revops_pipelines.logging import register_secret
from revops_pipelines.validation import StrictModel


def _read(env: Mapping[str, str], name: str, required: bool = True) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        if required:
            raise ConfigurationError(name, "environment variable is not set")
        return None
    return value.strip()


class ApiKeyCredential(StrictModel):
    """A static API key or bearer token (HubSpot private app, Slack bot token, Gong OAuth token)."""

    token: SecretStr

    def model_post_init(self, __context: object) -> None:
        register_secret(self.token.get_secret_value())

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.get_secret_value()}"}


class BasicCredential(StrictModel):
    """HTTP basic auth (Gong access key + access key secret)."""

    username: str
    password: SecretStr

    def model_post_init(self, __context: object) -> None:
        register_secret(self.password.get_secret_value())
        register_secret(self.encoded())

    def encoded(self) -> str:
        raw = f"{self.username}:{self.password.get_secret_value()}".encode()
        return base64.b64encode(raw).decode()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Basic {self.encoded()}"}


class OAuthClientCredentials(StrictModel):
    """OAuth 2.0 client-credentials grant (Firebolt service account, Salesforce connected app)."""

    client_id: str
    client_secret: SecretStr
    token_url: str | None = None

    def model_post_init(self, __context: object) -> None:
        register_secret(self.client_secret.get_secret_value())


def api_key_from_env(var: str, env: Mapping[str, str] | None = None) -> ApiKeyCredential:
    env = os.environ if env is None else env
    return ApiKeyCredential(token=SecretStr(_read(env, var)))


def basic_from_env(user_var: str, password_var: str, env: Mapping[str, str] | None = None) -> BasicCredential:
    env = os.environ if env is None else env
    return BasicCredential(username=_read(env, user_var), password=SecretStr(_read(env, password_var)))


def client_credentials_from_env(
    id_var: str, secret_var: str, token_url_var: str | None = None, env: Mapping[str, str] | None = None
) -> OAuthClientCredentials:
    env = os.environ if env is None else env
    return OAuthClientCredentials(
        client_id=_read(env, id_var),
        client_secret=SecretStr(_read(env, secret_var)),
        token_url=_read(env, token_url_var, required=False) if token_url_var else None,
    )
