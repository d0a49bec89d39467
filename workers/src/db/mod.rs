//! The one door to D1: nothing outside this folder prepares SQL.
//!
//! The privilege shows in the file: `team/` holds `TeamDb`, built only from a
//! `Principal`, and every one of its statements binds that principal's team as
//! `?1`; `service.rs` holds `ServiceDb`, the few reviewed cross-team
//! statements (credential lookup, cron discovery, creating a team).
//! `tests/tests/sql_lint.rs` reads both files and fails on a tenant statement
//! without the team predicate, an unreviewed service statement, or SQL
//! anywhere else. `rows.rs` holds the plain row types the statements return.
//!
//! Which D1 database: `shard.rs`. Every principal carries the shard its team
//! lives on (learned from the credential, the queue message or the fan-out
//! that found it), so a `TeamDb` can only open its own team's shard.

mod rows;
mod service;
mod shard;
mod team;

pub use rows::*;
pub use service::ServiceDb;
pub use shard::{Shard, Shards};
pub use team::{
    project_name, BudgetLine, BudgetScope, CursorIntegrationRow, CursorUserRow, DeveloperSpend,
    Filter, Group, PullTotals, SourceRow, TeamDb,
};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use crate::bindings;

pub enum Arg {
    Text(String),
    Int(i64),
    Null,
}

impl Arg {
    fn js(&self) -> JsValue {
        match self {
            Arg::Text(s) => JsValue::from_str(s),
            // JS numbers are exact to 2^53; the wire validator caps every count there.
            Arg::Int(i) => JsValue::from_f64(*i as f64),
            Arg::Null => JsValue::null(),
        }
    }
}

pub(crate) fn t(s: impl Into<String>) -> Arg {
    Arg::Text(s.into())
}

pub(crate) fn i(n: impl TryInto<i64>) -> Arg {
    Arg::Int(n.try_into().unwrap_or(i64::MAX))
}

pub(crate) fn opt_int(n: Option<i64>) -> Arg {
    n.map(Arg::Int).unwrap_or(Arg::Null)
}

pub(crate) fn opt_text(s: Option<&str>) -> Arg {
    s.map(t).unwrap_or(Arg::Null)
}

/// The configured shards (`D1_SHARDS`, `D1_NEW_TEAMS`); a bad list is an
/// operator error every request reports.
pub fn shards(env: &Env) -> Result<Shards> {
    Shards::parse(
        crate::util::config(env, bindings::D1_SHARDS).as_deref(),
        crate::util::config(env, bindings::D1_NEW_TEAMS).as_deref(),
    )
    .map_err(|e| worker::Error::RustError(e.to_string()))
}

fn database(env: &Env, shard: &Shard) -> Result<D1Database> {
    env.d1(shard.binding())
}

pub(crate) fn prepare(
    db: &D1Database,
    sql: &'static str,
    args: &[Arg],
) -> Result<D1PreparedStatement> {
    let values: Vec<JsValue> = args.iter().map(Arg::js).collect();
    db.prepare(sql).bind(&values)
}

pub(crate) async fn all<T: DeserializeOwned>(stmt: D1PreparedStatement) -> Result<Vec<T>> {
    stmt.all().await?.results::<T>()
}

/// A statement of the form `SELECT json_group_array(json_object(...)) AS rows
/// FROM (...)`, read as the rows it packs. For results of hundreds of rows:
/// D1 hands back one text instead of a JS object per row, and serde_json
/// reads it in one pass (a year's 520 chart rows, 1,000 sessions), where
/// `all` crosses into JS for every field. Integers stay exact (serde_json
/// reads i64 from the text). The packing order is not guaranteed by SQL, so
/// callers sort.
pub(crate) async fn all_json<T: DeserializeOwned>(stmt: D1PreparedStatement) -> Result<Vec<T>> {
    #[derive(Deserialize)]
    struct Packed {
        rows: Option<String>,
    }
    match first::<Packed>(stmt).await? {
        Some(Packed { rows: Some(text) }) => serde_json::from_str(&text)
            .map_err(|e| worker::Error::RustError(format!("packed rows: {e}"))),
        _ => Ok(Vec::new()),
    }
}

pub(crate) async fn first<T: DeserializeOwned>(stmt: D1PreparedStatement) -> Result<Option<T>> {
    stmt.first::<T>(None).await
}

/// Something that was authenticated (or, for queue and cron, is trusted
/// because only this Worker produces it) and therefore names one team.
pub trait Principal {
    fn team_id(&self) -> &str;
    /// The D1 shard holding the team.
    fn shard(&self) -> &Shard;
}

/// Implements `Principal` for a type with `team_id` and `shard` fields.
macro_rules! principal {
    ($t:ty, $team:ident) => {
        impl $crate::db::Principal for $t {
            fn team_id(&self) -> &str {
                &self.$team
            }
            fn shard(&self) -> &$crate::db::Shard {
                &self.shard
            }
        }
    };
}
pub(crate) use principal;

#[derive(Debug, Clone, Deserialize)]
pub struct AgentPrincipal {
    team_id: String,
    /// Set by the `ServiceDb` that found the row.
    #[serde(skip)]
    shard: Shard,
    pub agent_id: String,
    pub developer_id: String,
    revoked_at: Option<i64>,
}

impl AgentPrincipal {
    pub fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

principal!(AgentPrincipal, team_id);

#[derive(Debug, Clone, Deserialize)]
pub struct WebPrincipal {
    team_id: String,
    /// Set by the `ServiceDb` that found the row.
    #[serde(skip)]
    shard: Shard,
    pub id_hash: String,
    pub last_seen_at: i64,
    pub member_id: String,
    pub email: String,
    pub role: crate::vocab::Role,
    pub csrf_token: String,
    /// When the team is erased for good, while it is scheduled for deletion.
    #[serde(default)]
    pub team_delete_after: Option<i64>,
    /// The team's name, for the dashboard's header.
    #[serde(default)]
    pub team_name: String,
}

principal!(WebPrincipal, team_id);

/// A developer signed in to the read-only self-view (`/me`), through a link
/// their agent minted. Never a member: the member guards read another
/// cookie and another table.
#[derive(Debug, Clone, Deserialize)]
pub struct DeveloperPrincipal {
    team_id: String,
    /// Set by the `ServiceDb` that found the row.
    #[serde(skip)]
    shard: Shard,
    pub id_hash: String,
    pub developer_id: String,
    pub developer_name: String,
    pub last_seen_at: i64,
}

principal!(DeveloperPrincipal, team_id);

/// The holder of a just-consumed developer self-view link.
#[derive(Debug, Clone, Deserialize)]
pub struct DeveloperGrant {
    team_id: String,
    /// Set by the `ServiceDb` that found the row.
    #[serde(skip)]
    shard: Shard,
    pub developer_id: String,
    pub agent_id: String,
}

principal!(DeveloperGrant, team_id);

/// The holder of a just-consumed install token.
#[derive(Debug, Clone, Deserialize)]
pub struct EnrollPrincipal {
    team_id: String,
    /// Set by the `ServiceDb` that found the row.
    #[serde(skip)]
    shard: Shard,
    pub developer_id: String,
}

principal!(EnrollPrincipal, team_id);

/// A team named by a queue message (only the ingest route produces those,
/// after authenticating the agent) or found by the cron's team discovery.
/// The shard name beside it must be a configured one; none means the first
/// (messages and links from before sharding).
#[derive(Debug, Clone)]
pub struct TrustedTeam {
    team_id: String,
    shard: Shard,
}

impl TrustedTeam {
    pub fn from_queue(shards: &Shards, team_id: String, shard: Option<&str>) -> Result<Self> {
        let shard = shards.named(shard).cloned().ok_or_else(|| {
            worker::Error::RustError(format!("queue message names unknown shard {shard:?}"))
        })?;
        Ok(TrustedTeam { team_id, shard })
    }

    /// A team named by a link whose HMAC under PEPPER the caller verified
    /// (the e-mailed unsubscribe link). The shard is only routing: team ids
    /// are random and unique across shards, so a wrong one finds no team.
    pub fn from_signed_link(shards: &Shards, team_id: String, shard: Option<&str>) -> Option<Self> {
        let shard = shards.named(shard)?.clone();
        Some(TrustedTeam { team_id, shard })
    }
}

principal!(TrustedTeam, team_id);
