//! Per-team rate limiting. One Durable Object per team serializes every
//! take on that team's bucket; the arithmetic itself is `tally_core::bucket`.

use serde::{Deserialize, Serialize};
use tally_core::bucket::{take, BucketConfig, BucketState, Take};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::bindings;
use crate::util::now_ms;

#[derive(Debug, Serialize, Deserialize)]
pub struct TakeRequest {
    pub cost: u64,
    pub config: BucketConfig,
}

#[durable_object(fetch)]
pub struct TeamLimiter {
    state: State,
}

impl DurableObject for TeamLimiter {
    fn new(state: State, _env: Env) -> Self {
        TeamLimiter { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body: TakeRequest = match req.json().await {
            Ok(b) => b,
            Err(e) => return Response::error(format!("bad limiter request: {e}"), 400),
        };
        let now = now_ms();
        let storage = self.state.storage();
        let current: Option<BucketState> = storage.get("bucket").await?;
        let (next, outcome) = take(
            current.unwrap_or_else(|| BucketState::full(body.config, now)),
            body.config,
            now,
            body.cost,
        );
        storage.put("bucket", next).await?;
        Response::from_json(&outcome)
    }
}

pub async fn take_tokens(
    env: &Env,
    team_id: &str,
    cost: u64,
    config: BucketConfig,
) -> Result<Take> {
    let stub = env
        .durable_object(bindings::LIMITER)?
        .id_from_name(team_id)?
        .get_stub()?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post).with_body(Some(
        serde_json::to_string(&TakeRequest { cost, config })?.into(),
    ));
    let req = Request::new_with_init("https://limiter/take", &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "limiter answered {}: {}",
            resp.status_code(),
            resp.text().await.unwrap_or_default()
        )));
    }
    resp.json().await
}
