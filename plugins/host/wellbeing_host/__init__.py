"""Plugin host for the wellbeing assistant: loads one plugin module and serves it as MCP tools.

Importing this package stays cheap on purpose: the self-test sandbox imports only the loader and
the host API, never the MCP SDK, so it fits in a small memory limit.
"""

__version__ = "0.1.0"
