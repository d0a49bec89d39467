//! `POST /v1/otlp/v1/logs` and `/v1/otlp/v1/metrics`: OTLP over HTTP
//! (protobuf or JSON, gzip or not) from Claude Code or Codex, authenticated by
//! a per-developer OTLP token. The records become the same wire events an
//! agent sends (`otlp_map`) and take the same path to the queue (`accept`).

use worker::{Env, Request, Response};

use super::otlp_map::{self, Ctx, Encoding, Mapped, OtlpError};
use super::{accept, read_body, team_gone, Answer, BodyError};
use crate::db::TeamDb;
use crate::error::ApiError;
use crate::util::now_ms;
use tally_core::wire::MAX_BATCH_BYTES;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    Logs,
    Metrics,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

pub async fn otlp_logs(req: Request, env: Env) -> Answer {
    export(req, env, Signal::Logs).await
}

pub async fn otlp_metrics(req: Request, env: Env) -> Answer {
    export(req, env, Signal::Metrics).await
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge {
        code: "too_large",
        message: "OTLP body is larger than 1 MiB (after gzip); lower the exporter's batch size"
            .into(),
    }
}

impl From<OtlpError> for ApiError {
    fn from(e: OtlpError) -> Self {
        match e {
            OtlpError::Undecodable { .. } => ApiError::BadRequest {
                code: "invalid_otlp",
                message: e.to_string().into(),
            },
            OtlpError::TooManyRecords { .. } | OtlpError::TooManyEvents => {
                ApiError::PayloadTooLarge {
                    code: "too_many_records",
                    message: e.to_string().into(),
                }
            }
        }
    }
}

async fn export(mut req: Request, env: Env, signal: Signal) -> Answer {
    let principal = super::agent::authenticate_token(&req, &env, "tly_otlp_", "OTLP").await?;
    let ct = req.headers().get("Content-Type")?;
    let Some(enc) = Encoding::from_content_type(ct.as_deref()) else {
        return Err(ApiError::BadRequest {
            code: "unsupported_content_type",
            message: "Content-Type must be application/x-protobuf or application/json (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or http/json)".into(),
        });
    };
    if let Ok(Some(len)) = req.headers().get("Content-Length") {
        if len.parse::<usize>().is_ok_and(|n| n > MAX_BATCH_BYTES) {
            return Err(too_large());
        }
    }
    let gzip = match req.headers().get("Content-Encoding")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("gzip") => true,
        Some(v) if v.eq_ignore_ascii_case("identity") => false,
        Some(_) => {
            return Err(ApiError::BadRequest {
                code: "unsupported_encoding",
                message: "Content-Encoding must be gzip or absent".into(),
            })
        }
    };
    let body = read_body(req.bytes().await?, gzip).map_err(|e| match e {
        BodyError::TooLarge => too_large(),
        BodyError::BadGzip => ApiError::BadRequest {
            code: "bad_gzip",
            message: "Content-Encoding is gzip but the body is not valid gzip".into(),
        },
    })?;
    let now = now_ms();
    let db = TeamDb::new(&env, &principal)?;
    let team = db.settings().await?;
    team_gone(&team)?;
    let developer = db.otlp_state(&principal.developer_id).await?;
    let ctx = Ctx {
        salt: &team.salt,
        mode: team.mode(),
        now_ms: now,
        source: developer.source_path(),
        logs_seen: developer.otlp_logs_at.is_some(),
    };
    let mut mapped: Mapped = match signal {
        Signal::Logs => otlp_map::map_logs(&otlp_map::decode_logs(&body, enc)?, &ctx)?,
        Signal::Metrics => otlp_map::map_metrics(&otlp_map::decode_metrics(&body, enc)?, &ctx)?,
    };
    if signal == Signal::Logs && mapped.saw_requests && developer.otlp_logs_at.is_none() {
        // From now on this developer's metric data points are not counted:
        // they describe the same requests.
        db.mark_otlp_logs(&principal.developer_id, now).await?;
    }
    let batch_id = mapped.batch_id(&principal.agent_id, signal.name());
    accept(
        &env,
        &db,
        &team,
        &principal.developer_id,
        &principal.agent_id,
        &batch_id,
        std::mem::take(&mut mapped.events),
        now,
    )
    .await?;
    db.touch_agent(&principal.agent_id, now, None, None).await?;
    let body = match signal {
        Signal::Logs => mapped.logs_response(enc),
        Signal::Metrics => mapped.metrics_response(enc),
    };
    let mut r = Response::from_bytes(body)?;
    r.headers_mut().set("Content-Type", enc.content_type())?;
    Ok(r)
}
