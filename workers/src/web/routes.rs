//! The routing table: every path the Worker answers, as data. Resolving a
//! request names a `Route` and its path parameters; `web::dispatch` maps each
//! route to its handler. Pure, so the table is tested natively.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    // Agents.
    IngestEvents,
    OtlpLogs,
    OtlpMetrics,
    AgentEnroll,
    AgentConfig,
    AgentSelfView,
    // Operator.
    Bootstrap,
    // Sign-in.
    SigninLink,
    SigninConfirm,
    Login,
    Logout,
    // The developer self-view (read-only).
    SelfViewLink,
    SelfViewConfirm,
    SelfViewLogout,
    Me,
    MeAudit,
    MeSession,
    // Dashboard pages and their forms.
    Overview,
    Developers,
    Projects,
    LabelProject,
    Branches,
    LabelBranch,
    Sessions,
    Models,
    Categories,
    Settings,
    SavePrivacy,
    SaveRetention,
    SaveRateLimit,
    SaveShipInterval,
    SaveTimezone,
    SaveCategorizeBudget,
    Tokens,
    CreateToken,
    CreateOtlpToken,
    RevokeToken,
    SetSourcePath,
    Members,
    InviteMember,
    ChangeRole,
    RemoveMember,
    Audit,
    SessionTimeline,
    SessionExport,
    DeleteTeam,
    CancelDeletion,
    RemoveDeveloper,
    EraseDeveloper,
    Integrations,
    AddSlack,
    TestIntegration,
    RemoveIntegration,
    AddCursor,
    RemoveCursor,
    LinkCursorUser,
    SaveDigestSchedule,
    SaveWeeklyEmail,
    UnsubscribeConfirm,
    Unsubscribe,
    Budgets,
    SaveBudget,
    DeleteBudget,
    DismissAlert,
    SetSeat,
    Static,
    // Drill-downs.
    DeveloperDetail,
    ProjectDetail,
    ModelDetail,
    SessionSummary,
    RevokeInstallToken,
    ResendInvite,
    RevokeInvite,
    // Agent distribution (public).
    InstallScript,
    ReleaseManifest,
    ReleaseBinary,
    // JSON API.
    ApiMe,
    ApiOverview,
    ApiAgents,
    ApiCreateInstallToken,
    ApiSetPrivacy,
    ApiSetRateLimit,
    ApiSetCategorizeBudget,
    ApiAudit,
    ApiRevokeAgent,
    ApiFirstRun,
}

/// Method, path pattern (`:name` is one segment, `*name` the rest), route.
pub const TABLE: &[(&str, &str, Route)] = &[
    ("GET", "/healthz", Route::Healthz),
    ("POST", "/v1/events", Route::IngestEvents),
    ("POST", "/v1/otlp/v1/logs", Route::OtlpLogs),
    ("POST", "/v1/otlp/v1/metrics", Route::OtlpMetrics),
    ("POST", "/v1/agent/enroll", Route::AgentEnroll),
    ("GET", "/v1/agent/config", Route::AgentConfig),
    ("POST", "/v1/agent/self-view", Route::AgentSelfView),
    ("POST", "/v1/admin/bootstrap", Route::Bootstrap),
    ("GET", "/auth/link", Route::SigninLink),
    ("POST", "/auth/link", Route::SigninConfirm),
    ("POST", "/login", Route::Login),
    ("POST", "/logout", Route::Logout),
    ("GET", "/me/link", Route::SelfViewLink),
    ("POST", "/me/link", Route::SelfViewConfirm),
    ("POST", "/me/logout", Route::SelfViewLogout),
    ("GET", "/me", Route::Me),
    ("GET", "/me/audit", Route::MeAudit),
    ("GET", "/me/sessions/:id", Route::MeSession),
    ("GET", "/", Route::Overview),
    ("GET", "/developers", Route::Developers),
    ("GET", "/projects", Route::Projects),
    ("POST", "/projects/label", Route::LabelProject),
    ("GET", "/branches", Route::Branches),
    ("POST", "/branches/label", Route::LabelBranch),
    ("GET", "/sessions", Route::Sessions),
    ("GET", "/models", Route::Models),
    ("GET", "/categories", Route::Categories),
    ("GET", "/settings", Route::Settings),
    ("POST", "/settings/privacy", Route::SavePrivacy),
    ("POST", "/settings/retention", Route::SaveRetention),
    ("POST", "/settings/rate-limit", Route::SaveRateLimit),
    ("POST", "/settings/ship-interval", Route::SaveShipInterval),
    ("POST", "/settings/timezone", Route::SaveTimezone),
    (
        "POST",
        "/settings/categorize-budget",
        Route::SaveCategorizeBudget,
    ),
    ("GET", "/tokens", Route::Tokens),
    ("POST", "/tokens", Route::CreateToken),
    ("POST", "/tokens/revoke", Route::RevokeToken),
    ("POST", "/tokens/otlp", Route::CreateOtlpToken),
    ("POST", "/developers/source", Route::SetSourcePath),
    ("GET", "/members", Route::Members),
    ("POST", "/members/invite", Route::InviteMember),
    ("POST", "/members/role", Route::ChangeRole),
    ("POST", "/members/remove", Route::RemoveMember),
    ("GET", "/audit", Route::Audit),
    ("GET", "/sessions/:id", Route::SessionTimeline),
    ("GET", "/sessions/:id/export", Route::SessionExport),
    ("POST", "/settings/delete-team", Route::DeleteTeam),
    ("POST", "/settings/cancel-deletion", Route::CancelDeletion),
    ("POST", "/developers/remove", Route::RemoveDeveloper),
    ("POST", "/developers/erase", Route::EraseDeveloper),
    ("GET", "/integrations", Route::Integrations),
    ("POST", "/integrations/slack", Route::AddSlack),
    ("POST", "/integrations/test", Route::TestIntegration),
    ("POST", "/integrations/remove", Route::RemoveIntegration),
    ("POST", "/integrations/cursor", Route::AddCursor),
    ("POST", "/integrations/cursor/remove", Route::RemoveCursor),
    ("POST", "/integrations/cursor/user", Route::LinkCursorUser),
    ("POST", "/integrations/schedule", Route::SaveDigestSchedule),
    ("POST", "/settings/weekly-email", Route::SaveWeeklyEmail),
    ("GET", "/unsubscribe", Route::UnsubscribeConfirm),
    ("POST", "/unsubscribe", Route::Unsubscribe),
    ("GET", "/budgets", Route::Budgets),
    ("POST", "/budgets", Route::SaveBudget),
    ("POST", "/budgets/delete", Route::DeleteBudget),
    ("POST", "/alerts/dismiss", Route::DismissAlert),
    ("POST", "/developers/seat", Route::SetSeat),
    ("GET", "/static/*file", Route::Static),
    ("GET", "/developers/:id", Route::DeveloperDetail),
    ("GET", "/projects/:id", Route::ProjectDetail),
    ("GET", "/models/:id", Route::ModelDetail),
    ("GET", "/sessions/:id/summary", Route::SessionSummary),
    ("POST", "/tokens/revoke-install", Route::RevokeInstallToken),
    ("POST", "/members/resend", Route::ResendInvite),
    ("POST", "/members/revoke-invite", Route::RevokeInvite),
    ("GET", "/api/first-run", Route::ApiFirstRun),
    ("GET", "/install.sh", Route::InstallScript),
    ("GET", "/releases/manifest.json", Route::ReleaseManifest),
    (
        "GET",
        "/releases/agent/:version/:target/tally",
        Route::ReleaseBinary,
    ),
    ("GET", "/api/me", Route::ApiMe),
    ("GET", "/api/overview", Route::ApiOverview),
    ("GET", "/api/agents", Route::ApiAgents),
    ("POST", "/api/install-tokens", Route::ApiCreateInstallToken),
    ("POST", "/api/settings/privacy", Route::ApiSetPrivacy),
    ("POST", "/api/settings/rate-limit", Route::ApiSetRateLimit),
    (
        "POST",
        "/api/settings/categorize-budget",
        Route::ApiSetCategorizeBudget,
    ),
    ("GET", "/api/audit", Route::ApiAudit),
    ("POST", "/api/agents/:id/revoke", Route::ApiRevokeAgent),
];

/// Path parameters of a resolved request, owned so the request can move on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The router only resolves a route when its parameters are present and
    /// non-empty, so handlers never see a missing one.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    Found(Route, Params),
    /// The path exists for other methods.
    WrongMethod(Vec<&'static str>),
    NotFound,
}

type Methods = Vec<(&'static str, Route)>;

fn router() -> &'static matchit::Router<Methods> {
    static ROUTER: OnceLock<matchit::Router<Methods>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut paths: Vec<(&str, Methods)> = Vec::new();
        for &(method, path, route) in TABLE {
            match paths.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => methods.push((method, route)),
                None => paths.push((path, vec![(method, route)])),
            }
        }
        let mut r = matchit::Router::new();
        for (path, methods) in paths {
            // The table is a constant; the unit tests insert every entry.
            r.insert(path, methods).expect("routing table conflict");
        }
        r
    })
}

pub fn resolve(method: &str, path: &str) -> Resolved {
    let Ok(m) = router().at(path) else {
        return Resolved::NotFound;
    };
    if m.params.iter().any(|(_, v)| v.is_empty()) {
        return Resolved::NotFound;
    }
    match m.value.iter().find(|(verb, _)| *verb == method) {
        Some(&(_, route)) => Resolved::Found(
            route,
            Params(
                m.params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        ),
        None => Resolved::WrongMethod(m.value.iter().map(|(verb, _)| *verb).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A concrete path for a pattern: parameters filled with sample values.
    fn sample(pattern: &str) -> String {
        pattern
            .split('/')
            .map(|seg| match seg.chars().next() {
                Some(':') => "a1b2c3",
                Some('*') => "uplot.js",
                _ => seg,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_route_resolves_to_itself() {
        for &(method, pattern, route) in TABLE {
            match resolve(method, &sample(pattern)) {
                Resolved::Found(r, _) => assert_eq!(r, route, "{method} {pattern}"),
                other => panic!("{method} {pattern}: {other:?}"),
            }
        }
    }

    #[test]
    fn no_route_is_listed_twice() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!(a.0 != b.0 || a.1 != b.1, "{} {} twice", a.0, a.1);
                assert_ne!(a.2, b.2, "{:?} twice", a.2);
            }
        }
    }

    #[test]
    fn path_parameters_are_extracted() {
        let Resolved::Found(Route::ApiRevokeAgent, p) =
            resolve("POST", "/api/agents/0123abcd/revoke")
        else {
            panic!()
        };
        assert_eq!(p.get("id"), "0123abcd");
        let Resolved::Found(Route::Static, p) = resolve("GET", "/static/chart.js") else {
            panic!()
        };
        assert_eq!(p.get("file"), "chart.js");
    }

    #[test]
    fn revoke_without_an_id_is_not_found_not_a_panic() {
        assert_eq!(resolve("POST", "/api/agents/revoke"), Resolved::NotFound);
        assert_eq!(resolve("POST", "/api/agents//revoke"), Resolved::NotFound);
        assert_eq!(resolve("POST", "/api/agents/"), Resolved::NotFound);
        assert_eq!(
            resolve("POST", "/api/agents/x/y/revoke"),
            Resolved::NotFound
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/nope",
            "/api/nope",
            "/v1/nope",
            "/v1/events/extra",
            "/static/",
            "",
            "/developers/",
        ] {
            assert_eq!(resolve("GET", path), Resolved::NotFound, "{path}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_lists_the_allowed_ones() {
        assert_eq!(
            resolve("GET", "/api/settings/privacy"),
            Resolved::WrongMethod(vec!["POST"])
        );
        assert_eq!(
            resolve("DELETE", "/tokens"),
            Resolved::WrongMethod(vec!["GET", "POST"])
        );
    }
}
