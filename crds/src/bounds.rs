//! Upper bounds for every string and array in the four CRDs.
//!
//! The apiserver estimates each CEL rule's worst-case cost from these bounds when a CRD is created
//! (see `tests/cel_cost.rs`); a string or array without one is costed as if it filled a whole
//! 3 MiB request, and the CRD is refused. The numbers come from the systems the values end up in,
//! or from what a person could reasonably write, as each comment says.

/// "HH:MM".
pub const HHMM: u32 = 5;
/// DNS-1123 label (Kubernetes label values, pillar names): 63 characters.
pub const DNS_LABEL: u32 = 63;
/// DNS-1123 subdomain (object names, host names): 253 characters.
pub const DNS_SUBDOMAIN: u32 = 253;
/// Secret Manager secret ids: `[a-zA-Z0-9_-]{1,255}`.
pub const SECRET_ID: u32 = 255;
/// Environment variable names: POSIX sets no limit; 128 is far beyond any real name.
pub const ENV_NAME: u32 = 128;
/// Longest IANA zone name today is 32 characters ("America/Argentina/ComodRivadavia").
pub const TIME_ZONE: u32 = 64;
/// An RFC 3339 timestamp with offset and nanoseconds is 35 characters.
pub const TIMESTAMP: u32 = 64;
/// "YYYY-MM-DD".
pub const DATE: u32 = 10;
/// One line a person writes: a goal, a display name's description, a reminder, a prompt.
pub const SHORT_TEXT: u32 = 500;
/// A description an LLM reads to pick a tool; MCP servers' tool descriptions run to a few KiB.
pub const DESCRIPTION: u32 = 4096;
/// A persona's system prompt: a few pages of instructions.
pub const SYSTEM_PROMPT: u32 = 16384;
/// A model id at an OpenAI-compatible endpoint ("meta-llama/Llama-3.1-8B-Instruct" and the like).
pub const MODEL_ID: u32 = 256;
/// An inline Python module becomes a ConfigMap, and a ConfigMap holds at most 1 MiB; half of it
/// leaves room for the rest of the object in the same request.
pub const PLUGIN_CODE: u32 = 512 * 1024;
/// `<id>/v<N>.py` with a DNS-label id.
pub const MODULE_PATH: u32 = 128;
/// A container image reference: registry, repository path, tag and digest.
pub const IMAGE: u32 = 1024;
/// URLs: 2048 is what browsers and most proxies accept.
pub const URL: u32 = 2048;
/// One argument of a command line.
pub const ARG: u32 = 4096;
/// MCP tool names (the MCP specification: at most 128 characters).
pub const TOOL_NAME: u32 = 128;
/// `status.version`: generation plus a 12-digit hash.
pub const VERSION: u32 = 64;
/// `status.progress.summary`: "current/target".
pub const SUMMARY: u32 = 32;

/// A day has at most 24 one-hour windows (and `perDay` is at most 24).
pub const PER_DAY: u32 = 24;
/// Seven weekdays.
pub const WEEKDAYS: u32 = 7;
/// Every required field at most once (eight fields exist).
pub const REQUIRED_FIELDS: u32 = 8;
/// Lists a person writes by hand: keywords, prompts, crisis resources, pillars.
pub const HAND_LIST: u32 = 64;
/// Secrets one plugin needs, hosts it may reach, arguments of its command.
pub const PLUGIN_LIST: u32 = 32;
/// Names of other objects in status (plugins covering a goal, plugins using a secret).
pub const NAME_LIST: u32 = 256;
/// Tools one MCP server offers.
pub const TOOLS: u32 = 128;
/// Conditions on one object: each type appears once and we set at most a handful.
pub const CONDITIONS: u32 = 16;
