//! `POST /v1/admin/bootstrap`: the operator creates a team with its owner, a
//! first developer, a one-time install token and the owner's first sign-in
//! link. Guarded by the BOOTSTRAP_SECRET deployment secret.

use serde::{Deserialize, Serialize};
use tally_core::time::DAY_MS;
use worker::{Env, Request, Response};

use super::actions::store_install_token;
use super::auth::secret_eq;
use super::error::ApiError;
use super::signin::new_link;
use crate::bindings;
use crate::db::{ServiceDb, TeamDb};
use crate::util::{bearer, config, json_status, now_ms, random32, random_id, required};
use crate::vocab::Role;

/// Longer than a mailed link: the operator passes it on by hand.
const BOOTSTRAP_LINK_TTL_MS: i64 = DAY_MS;

#[derive(Deserialize)]
struct BootstrapRequest {
    team_name: String,
    owner_email: String,
    #[serde(default)]
    developer_name: Option<String>,
    /// `cargo xtask dev` sets this: a second start must not create a second team.
    #[serde(default)]
    only_if_empty: bool,
}

#[derive(Serialize, Default)]
struct BootstrapResponse {
    created: bool,
    team_id: Option<String>,
    signin_path: Option<String>,
    install_token: Option<String>,
}

pub async fn bootstrap(mut req: Request, env: Env) -> Result<Response, ApiError> {
    let Some(expected) = config(&env, bindings::BOOTSTRAP_SECRET) else {
        return Err(ApiError::not_found(
            "bootstrap is disabled (no BOOTSTRAP_SECRET)",
        ));
    };
    if !bearer(&req).is_some_and(|t| secret_eq(&t, &expected)) {
        return Err(ApiError::unauthorized("bad bootstrap secret"));
    }
    let body: BootstrapRequest = req
        .json()
        .await
        .map_err(|_| ApiError::bad_request("expected {team_name, owner_email}"))?;
    // Addresses are stored case-folded, as sign-in and invitations look them up.
    let owner_email = body.owner_email.trim().to_ascii_lowercase();
    let (team_name, owner_email) = (body.team_name.trim(), owner_email.as_str());
    if team_name.is_empty() || !body.owner_email.contains('@') {
        return Err(ApiError::bad_request(
            "team_name and a valid owner_email are required",
        ));
    }
    if body.only_if_empty {
        for service in ServiceDb::all(&env)? {
            if service.team_count().await? > 0 {
                return Ok(json_status(200, &BootstrapResponse::default())?);
            }
        }
    }
    // Fail before writing anything when the deployment lacks its pepper.
    required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let team = ServiceDb::for_new_team(&env)
        .await?
        .create_team(&random_id()?, team_name, &hex::encode(random32()?), now)
        .await?;
    let db = TeamDb::new(&env, &team)?;
    let owner_id = random_id()?;
    db.add_member(&owner_id, owner_email, Role::Owner, now)
        .await?;
    let developer_id = random_id()?;
    let developer_name = body.developer_name.as_deref().unwrap_or(owner_email);
    db.add_developer(&developer_id, developer_name, now).await?;
    let install = store_install_token(&env, &db, &developer_id, &owner_id, now).await?;
    let link = new_link(&env, &db, &owner_id, BOOTSTRAP_LINK_TTL_MS).await?;
    Ok(json_status(
        201,
        &BootstrapResponse {
            created: true,
            team_id: Some(team.id.clone()),
            signin_path: Some(format!("/auth/link?token={link}")),
            install_token: Some(install.token),
        },
    )?)
}
