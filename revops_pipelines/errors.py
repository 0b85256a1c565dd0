"""Exceptions shared across the engine. Each carries a message a user can act on."""


class RevOpsError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigurationError(RevOpsError):
    """A setting is missing or invalid. The message names the setting (never its value if secret)."""

    def __init__(self, setting: str, problem: str, hint: str | None = None):
        self.setting = setting
        self.problem = problem
        msg = f"configuration error in {setting}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class ValidationFailed(RevOpsError):
    """Input or output did not match its declared model. ``problems`` lists field-level messages."""

    def __init__(self, what: str, problems: list[str]):
        self.what = what
        self.problems = problems
        super().__init__(f"invalid {what}: " + "; ".join(problems))


class WarehouseError(RevOpsError):
    """A warehouse operation failed; the message names the table or statement kind."""
