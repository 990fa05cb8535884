-- What plugins cost and did. Neither table holds message text, prompts, arguments or secret values:
-- a plugin's prompt may carry the user's words, so only names, counts, timings and outcomes are kept.

-- One row per request a plugin made to the LLM gateway (/internal/llm/v1/chat/completions),
-- answered or refused. The daily token budget sums total_tokens per plugin since the user's local
-- midnight.
CREATE TABLE plugin_llm_requests (
    id                INTEGER PRIMARY KEY,
    plugin            TEXT NOT NULL,
    task              TEXT NOT NULL,            -- task class: chat | extraction | summary | code
    model             TEXT NOT NULL DEFAULT '', -- the model the gateway chose ('' when refused first)
    outcome           TEXT NOT NULL CHECK (outcome IN ('ok', 'over_budget', 'bad_request', 'no_llm', 'upstream_error')),
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    estimated         INTEGER NOT NULL DEFAULT 0 CHECK (estimated IN (0, 1)), -- 1: upstream sent no usage
    duration_ms       INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);
CREATE INDEX plugin_llm_requests_day ON plugin_llm_requests (plugin, created_at);

-- One row per tool call the assistant made to a plugin over MCP (the plugin pool's invocation
-- records). `reason` is the error text, already scrubbed of secret values by the plugin host.
CREATE TABLE plugin_invocations (
    id          INTEGER PRIMARY KEY,
    plugin      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    tool        TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'timeout')),
    duration_ms INTEGER NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX plugin_invocations_plugin ON plugin_invocations (plugin, created_at);
