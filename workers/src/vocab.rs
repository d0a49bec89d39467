//! Closed vocabularies stored in D1 as text: member roles and audit actions.
//! The spellings are part of the stored data and of the audit log's filters,
//! so they never change; code compares the enums, never the strings.

use serde::{Deserialize, Serialize};

/// A member's role. Ordered by power, so `role >= Role::Admin` reads as
/// "admin or owner".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

impl Role {
    /// Most powerful first: the order the dashboard offers them in.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

tally_core::named_enum! {
    /// What an audit entry records. `as_str` is the stored `audit_log.action`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum AuditAction {
        SignIn => "sign_in",
        PrivacyModeChange => "privacy_mode.change",
        RateLimitChange => "rate_limit.change",
        ShipIntervalChange => "ship_interval.change",
        CategorizeBudgetChange => "categorize_budget.change",
        RetentionChange => "retention.change",
        TimezoneChange => "timezone.change",
        AgentRevoke => "agent.revoke",
        InstallTokenCreate => "install_token.create",
        ProjectLabel => "project.label",
        MemberInvite => "member.invite",
        MemberRoleChange => "member.role_change",
        MemberRemove => "member.remove",
        Export => "export",
        RetentionPruned => "retention.pruned",
        ContentPurged => "content.purged",
        ContentPurgeRequested => "content.purge",
        ContentView => "content.view",
        ContentExport => "content.export",
        DeveloperRemove => "developer.remove",
        DeveloperErased => "developer.erased",
        TeamDeletionScheduled => "team.delete",
        TeamDeletionCancelled => "team.delete_cancel",
        LifecycleFailed => "lifecycle.failed",
        IntegrationInstall => "integration.install",
        IntegrationRemove => "integration.remove",
        IntegrationTest => "integration.test",
        IntegrationBroken => "integration.broken",
        DigestScheduleChange => "digest.schedule",
        DigestEmailChange => "digest.email",
        BudgetSet => "budget.set",
        BudgetDelete => "budget.delete",
        AlertDismiss => "alert.dismiss",
        SeatPlanChange => "seat_plan.change",
        DeveloperSignIn => "developer.sign_in",
        OtlpTokenCreate => "otlp_token.create",
        SourcePathChange => "source_path.change",
        InstallTokenRevoke => "install_token.revoke",
        MemberInviteResend => "member.invite_resend",
        MemberInviteRevoke => "member.invite_revoke",
        CursorUserLink => "integration.cursor_user",
        BranchLabel => "branch.label",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_spellings_round_trip_and_order_by_power() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.as_str())
            );
        }
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Viewer);
        assert_eq!(
            serde_json::from_value::<Role>(serde_json::json!("admin")).unwrap(),
            Role::Admin
        );
        assert_eq!(Role::parse("Owner"), None);
    }

    #[test]
    fn audit_action_spellings_are_the_stored_ones_and_distinct() {
        let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "sign_in",
                "privacy_mode.change",
                "rate_limit.change",
                "ship_interval.change",
                "categorize_budget.change",
                "retention.change",
                "timezone.change",
                "agent.revoke",
                "install_token.create",
                "project.label",
                "member.invite",
                "member.role_change",
                "member.remove",
                "export",
                "retention.pruned",
                "content.purged",
                "content.purge",
                "content.view",
                "content.export",
                "developer.remove",
                "developer.erased",
                "team.delete",
                "team.delete_cancel",
                "lifecycle.failed",
                "integration.install",
                "integration.remove",
                "integration.test",
                "integration.broken",
                "digest.schedule",
                "digest.email",
                "budget.set",
                "budget.delete",
                "alert.dismiss",
                "seat_plan.change",
                "developer.sign_in",
                "otlp_token.create",
                "source_path.change",
                "install_token.revoke",
                "member.invite_resend",
                "member.invite_revoke",
                "integration.cursor_user",
                "branch.label"
            ]
        );
    }
}
