"""Errors a plugin can see. Their messages never contain secret values."""


class HostError(Exception):
    """Base class of every error the host raises towards a plugin or a caller."""


class ContractError(HostError):
    """The plugin module does not follow the contract in plugins/README.md."""


class SecretNotDeclared(HostError):
    """The plugin asked for a secret it did not list in `required_secrets`."""


class SecretMissing(HostError):
    """A declared secret has no value in the environment or the mounted files."""


class EgressDenied(HostError):
    """The plugin tried to reach a host it did not declare in `egress_hosts`."""


class HttpError(HostError):
    """An `http_get` request failed (connection error, timeout or an error status)."""


class LlmUnavailable(HostError):
    """No LLM gateway is configured for this plugin."""


class LlmError(HostError):
    """The assistant's LLM gateway refused or failed a request."""
