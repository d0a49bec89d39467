//! Every binding and configuration name the Worker reads, defined once so
//! `wrangler.toml`, `.dev.vars` and the code cannot drift apart silently.

/// D1 database: reached only through `crate::db`. The first shard.
pub const DB: &str = "DB";
/// Var: the D1 shard bindings, comma-separated, first = `DB` (see `db::shard`).
/// Append only: a listed binding holds teams and keeps its name.
pub const D1_SHARDS: &str = "D1_SHARDS";
/// Var: the shards new teams may be placed on (default: all of `D1_SHARDS`);
/// the one holding the fewest teams gets the next.
pub const D1_NEW_TEAMS: &str = "D1_NEW_TEAMS";
/// R2 bucket holding sealed Full-mode content.
pub const CONTENT_BUCKET: &str = "CONTENT";
/// R2 bucket of agent releases (`cargo xtask release-agent --upload`).
pub const RELEASES_BUCKET: &str = "RELEASES";
/// Var: the oldest agent version the server still supports (agents below it
/// are flagged on the Developers page and told to update).
pub const MIN_AGENT_VERSION: &str = "MIN_AGENT_VERSION";
/// Queue producer carrying batch rollups to the consumer.
pub const EVENTS_QUEUE: &str = "EVENTS";
/// Durable Object namespace of the per-team token bucket.
pub const LIMITER: &str = "LIMITER";

/// Secret: HMAC key for every stored credential hash.
pub const PEPPER: &str = "PEPPER";
/// Secret: root key for per-team R2 content encryption (HKDF).
pub const CONTENT_KEY: &str = "CONTENT_KEY";
/// Secret: operator credential for `POST /v1/admin/bootstrap`.
pub const BOOTSTRAP_SECRET: &str = "BOOTSTRAP_SECRET";
/// Secret: Anthropic API key for categorize-cloud.
pub const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";
/// Secret: root key sealing integration secrets (Slack webhook URLs, bot
/// tokens) per team (HKDF). Without it integrations are disabled.
pub const KMS_KEY: &str = "KMS_KEY";
/// Secret: key of the Resend-compatible e-mail API.
pub const EMAIL_API_KEY: &str = "EMAIL_API_KEY";

/// Var: base URL of the Anthropic Messages API (a loopback fake in tests).
pub const ANTHROPIC_BASE_URL: &str = "ANTHROPIC_BASE_URL";
/// Var: the model that categorizes prompts.
pub const ANTHROPIC_MODEL: &str = "ANTHROPIC_MODEL";
/// Var: cap on distinct prompts sent to the model per batch.
pub const CATEGORIZE_MAX_PER_BATCH: &str = "CATEGORIZE_MAX_PER_BATCH";
/// Var: endpoint of the Resend-compatible e-mail API.
pub const EMAIL_API_URL: &str = "EMAIL_API_URL";
/// Var: sender address of sign-in mails.
pub const EMAIL_FROM: &str = "EMAIL_FROM";
/// Var: public origin used in links sent by e-mail.
pub const PUBLIC_URL: &str = "PUBLIC_URL";
/// Var: R2 calls one lifecycle invocation may spend (tests set it low).
pub const LIFECYCLE_OPS_PER_RUN: &str = "LIFECYCLE_OPS_PER_RUN";
/// Var: base of Slack's Web API (`chat.postMessage`); a loopback fake in tests.
pub const SLACK_API_BASE: &str = "SLACK_API_BASE";
/// Var: base of Cursor's Admin API (`/teams/filtered-usage-events`); a loopback fake in tests.
pub const CURSOR_API_BASE: &str = "CURSOR_API_BASE";
/// Var: events asked for per page of Cursor's usage (default 100; tests set it low to page).
pub const CURSOR_PAGE_SIZE: &str = "CURSOR_PAGE_SIZE";
/// Var: "1" lets admins save loopback webhook URLs. Tests only; never in production.
pub const SLACK_ALLOW_LOOPBACK: &str = "SLACK_ALLOW_LOOPBACK";
