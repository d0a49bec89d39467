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

/// What an audit entry records. `as_str` is the stored `audit_log.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    SignIn,
    PrivacyModeChange,
    RateLimitChange,
    RetentionChange,
    TimezoneChange,
    AgentRevoke,
    InstallTokenCreate,
    ProjectLabel,
    MemberInvite,
    MemberRoleChange,
    MemberRemove,
    Export,
}

impl AuditAction {
    pub const ALL: [AuditAction; 12] = [
        AuditAction::SignIn,
        AuditAction::PrivacyModeChange,
        AuditAction::RateLimitChange,
        AuditAction::RetentionChange,
        AuditAction::TimezoneChange,
        AuditAction::AgentRevoke,
        AuditAction::InstallTokenCreate,
        AuditAction::ProjectLabel,
        AuditAction::MemberInvite,
        AuditAction::MemberRoleChange,
        AuditAction::MemberRemove,
        AuditAction::Export,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::PrivacyModeChange => "privacy_mode.change",
            AuditAction::RateLimitChange => "rate_limit.change",
            AuditAction::RetentionChange => "retention.change",
            AuditAction::TimezoneChange => "timezone.change",
            AuditAction::AgentRevoke => "agent.revoke",
            AuditAction::InstallTokenCreate => "install_token.create",
            AuditAction::ProjectLabel => "project.label",
            AuditAction::MemberInvite => "member.invite",
            AuditAction::MemberRoleChange => "member.role_change",
            AuditAction::MemberRemove => "member.remove",
            AuditAction::Export => "export",
        }
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
                "retention.change",
                "timezone.change",
                "agent.revoke",
                "install_token.create",
                "project.label",
                "member.invite",
                "member.role_change",
                "member.remove",
                "export"
            ]
        );
    }
}
