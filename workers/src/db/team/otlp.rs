//! OTLP tokens and each developer's source path (agent or OTLP).

use tally_core::source_path::{Path, SourcePath};
use worker::Result;

use super::super::{all, first, i, opt_text, t};
use super::TeamDb;
use serde::Deserialize;

/// What OTLP ingest needs to know about the token's developer.
#[derive(Debug, Clone, Deserialize)]
pub struct OtlpDeveloper {
    pub source_path: String,
    pub source_since: Option<i64>,
    pub source_earlier: String,
    pub otlp_logs_at: Option<i64>,
}

impl OtlpDeveloper {
    pub fn source_path(&self) -> SourcePath {
        SourcePath {
            path: Path::parse(&self.source_path).unwrap_or(Path::Agent),
            since_ms: self.source_since,
            // Written only by `set_source_path`; unreadable means never switched before.
            earlier: serde_json::from_str(&self.source_earlier).unwrap_or_default(),
        }
    }
}

/// A developer's path as the Tokens page lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceRow {
    pub id: String,
    pub source_path: String,
    pub source_since: Option<i64>,
}

impl TeamDb {
    pub async fn source_paths(&self) -> Result<Vec<SourceRow>> {
        all(self.stmt(
            "SELECT id, source_path, source_since FROM developers WHERE team_id = ?1 AND removed_at IS NULL ORDER BY created_at, id",
            vec![],
        )?)
        .await
    }

    /// A developer unknown to the team (erased, say) has the default path.
    pub async fn otlp_state(&self, developer_id: &str) -> Result<OtlpDeveloper> {
        Ok(first(self.stmt(
            "SELECT source_path, source_since, source_earlier, otlp_logs_at FROM developers WHERE team_id = ?1 AND id = ?2",
            vec![t(developer_id)],
        )?)
        .await?
        .unwrap_or(OtlpDeveloper {
            source_path: Path::Agent.as_str().into(),
            source_since: None,
            source_earlier: "[]".into(),
            otlp_logs_at: None,
        }))
    }

    pub async fn source_path(&self, developer_id: &str) -> Result<SourcePath> {
        Ok(self.otlp_state(developer_id).await?.source_path())
    }

    /// Records a switch; choosing the current path changes nothing.
    pub async fn set_source_path(
        &self,
        developer_id: &str,
        to: Path,
        now: i64,
    ) -> Result<Option<SourcePath>> {
        let current = self.source_path(developer_id).await?;
        let next = current.switched(to, now);
        if next == current {
            return Ok(None);
        }
        self.stmt(
            "UPDATE developers SET source_path = ?3, source_since = ?4, source_earlier = ?5 WHERE team_id = ?1 AND id = ?2",
            vec![
                t(developer_id),
                t(next.path.as_str()),
                opt_int(next.since_ms),
                t(serde_json::to_string(&next.earlier).unwrap_or_else(|_| "[]".into())),
            ],
        )?
        .run()
        .await?;
        Ok(Some(next))
    }

    pub async fn mark_otlp_logs(&self, developer_id: &str, now: i64) -> Result<()> {
        self.stmt(
            "UPDATE developers SET otlp_logs_at = ?3 WHERE team_id = ?1 AND id = ?2 AND otlp_logs_at IS NULL",
            vec![t(developer_id), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn add_otlp_token(
        &self,
        token_id: &str,
        developer_id: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO agent_tokens (team_id, token_hash, id, developer_id, hostname, created_at, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'otlp')",
            vec![t(token_hash), t(token_id), t(developer_id), opt_text(Some("OpenTelemetry")), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }
}

fn opt_int(v: Option<i64>) -> super::super::Arg {
    v.map(i).unwrap_or(super::super::Arg::Null)
}
