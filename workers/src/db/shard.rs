//! Static D1 shards: which D1 binding holds a team, decided without a
//! directory. Every team lives wholly on one shard; the shard is named by
//! its binding (`DB`, `DB_2`, ...), listed in the var `D1_SHARDS` (default
//! `DB`). The list only grows: a binding that held teams is never renamed,
//! reordered to another position than first, or removed.
//!
//! The routing key travels with whatever arrives:
//! - credentials minted by the Worker (agent, install, sign-in and self-view
//!   tokens, both session cookies) end in `-<shard>`; the stored keyed hash
//!   covers the tag, so editing it only finds nothing. A credential without
//!   a tag predates sharding and lives on the first shard.
//! - queue messages and signed links carry the shard next to the team id
//!   (absent: the first shard).
//! - crons, sign-in by e-mail and bootstrap's "is there any team" fan out
//!   over every shard.
//!
//! New teams go to the shard of `D1_NEW_TEAMS` (default: every shard) that
//! holds the fewest teams, the earliest listed on a tie: taking a full shard
//! out of that list stops its growth, adding a binding spreads new teams.

use serde::{Deserialize, Serialize};

/// One shard: the name of its D1 binding. Built only from the configuration
/// (`Shards`), so a name from a credential or a message is checked first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shard(String);

impl Shard {
    pub fn binding(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardConfigError {
    #[error("D1_SHARDS names no binding")]
    Empty,
    #[error("D1_SHARDS: `{0}` is not a binding name (letters, digits and _ only)")]
    BadName(String),
    #[error("D1_SHARDS lists `{0}` twice")]
    Duplicate(String),
    #[error("D1_NEW_TEAMS names `{0}`, which is not in D1_SHARDS")]
    UnknownNewTeamShard(String),
}

/// The configured shards, first = where untagged (older) credentials live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shards {
    all: Vec<Shard>,
    new_teams: Vec<Shard>,
}

/// What separates a credential from its shard tag. Binding names and the
/// hex or `tly_..._` credentials never contain it, and it stays inside the
/// redaction rule's character class, so a leaked token is still caught whole.
const TAG: char = '-';

fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl Shards {
    /// `shards` is `D1_SHARDS`, `new_teams` is `D1_NEW_TEAMS`; None or blank
    /// means the default (`DB`, and every shard).
    pub fn parse(
        shards: Option<&str>,
        new_teams: Option<&str>,
    ) -> Result<Shards, ShardConfigError> {
        let mut all: Vec<Shard> = Vec::new();
        let listed = shards.filter(|s| !s.trim().is_empty());
        for name in names(listed.unwrap_or(crate::bindings::DB)) {
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ShardConfigError::BadName(name.to_string()));
            }
            if all.iter().any(|s| s.0 == name) {
                return Err(ShardConfigError::Duplicate(name.to_string()));
            }
            all.push(Shard(name.to_string()));
        }
        if all.is_empty() {
            return Err(ShardConfigError::Empty);
        }
        let mut placing = Vec::new();
        for name in names(new_teams.unwrap_or("")) {
            let shard = all
                .iter()
                .find(|s| s.0 == name)
                .ok_or_else(|| ShardConfigError::UnknownNewTeamShard(name.to_string()))?;
            if !placing.contains(shard) {
                placing.push(shard.clone());
            }
        }
        if placing.is_empty() {
            placing = all.clone();
        }
        Ok(Shards {
            all,
            new_teams: placing,
        })
    }

    pub fn all(&self) -> &[Shard] {
        &self.all
    }

    pub fn first(&self) -> &Shard {
        &self.all[0]
    }

    /// The shards that accept new teams, in order of preference on a tie.
    pub fn for_new_teams(&self) -> &[Shard] {
        &self.new_teams
    }

    /// A configured shard by name; None (the first shard) for a name that
    /// was never sent, i.e. a message or link from before sharding.
    pub fn named(&self, name: Option<&str>) -> Option<&Shard> {
        match name {
            None | Some("") => Some(self.first()),
            Some(n) => self.all.iter().find(|s| s.0 == n),
        }
    }

    /// Where a presented credential was stored: its tag's shard, the first
    /// shard without a tag, None for a tag naming no configured shard.
    pub fn of_credential(&self, credential: &str) -> Option<&Shard> {
        match credential.rsplit_once(TAG) {
            None => Some(self.first()),
            Some((_, tag)) => self.all.iter().find(|s| s.0 == tag),
        }
    }
}

/// A new credential's text: the secret, then its shard's tag.
pub fn tag(secret: &str, shard: &Shard) -> String {
    format!("{secret}{TAG}{}", shard.0)
}

/// The shard among `candidates` (with their team counts) that gets a new
/// team: fewest teams, earliest listed on a tie.
pub fn least_loaded(counts: &[(Shard, i64)]) -> Option<&Shard> {
    counts
        .iter()
        .enumerate()
        .min_by_key(|(k, (_, n))| (*n, *k))
        .map(|(_, (s, _))| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Shard {
        Shard(n.into())
    }

    #[test]
    fn one_shard_named_db_by_default() {
        let d = Shards::parse(None, None).unwrap();
        assert_eq!(d.all(), &[s("DB")]);
        assert_eq!(d.for_new_teams(), &[s("DB")]);
        assert_eq!(Shards::parse(Some(" "), Some("")).unwrap(), d);
    }

    #[test]
    fn the_list_is_checked() {
        let two = Shards::parse(Some("DB, DB_2"), None).unwrap();
        assert_eq!(two.all(), &[s("DB"), s("DB_2")]);
        assert_eq!(two.for_new_teams(), &[s("DB"), s("DB_2")]);
        let only = Shards::parse(Some("DB,DB_2"), Some("DB_2")).unwrap();
        assert_eq!(only.for_new_teams(), &[s("DB_2")]);
        assert_eq!(
            Shards::parse(Some("DB,DB-2"), None),
            Err(ShardConfigError::BadName("DB-2".into()))
        );
        assert_eq!(
            Shards::parse(Some("DB,DB"), None),
            Err(ShardConfigError::Duplicate("DB".into()))
        );
        assert_eq!(Shards::parse(Some(","), None), Err(ShardConfigError::Empty));
        assert_eq!(
            Shards::parse(Some("DB"), Some("DB_3")),
            Err(ShardConfigError::UnknownNewTeamShard("DB_3".into()))
        );
    }

    #[test]
    fn credentials_route_by_their_tag_and_untagged_ones_to_the_first_shard() {
        let shards = Shards::parse(Some("DB,DB_2"), None).unwrap();
        let hex = "ab".repeat(32);
        let agent = tag(&format!("tly_agent_{hex}"), &s("DB_2"));
        assert_eq!(agent, format!("tly_agent_{hex}-DB_2"));
        assert_eq!(shards.of_credential(&agent), Some(&s("DB_2")));
        assert_eq!(shards.of_credential(&tag(&hex, &s("DB"))), Some(&s("DB")));
        // Deployed before sharding: no tag, first shard.
        assert_eq!(
            shards.of_credential(&format!("tly_agent_{hex}")),
            Some(&s("DB"))
        );
        assert_eq!(shards.of_credential(&hex), Some(&s("DB")));
        // A tag naming no shard routes nowhere (an unknown credential).
        assert_eq!(shards.of_credential(&format!("{hex}-DB_9")), None);
        assert_eq!(shards.of_credential(&format!("{hex}-")), None);
    }

    #[test]
    fn tagged_tokens_are_still_redacted_whole() {
        let token = tag(&format!("tly_agent_{}", "0f".repeat(32)), &s("DB_2"));
        let line = format!("export TALLY_TOKEN={token} # mine");
        let out = tally_core::redact::redact(&line);
        assert!(!out.contains("DB_2") && !out.contains("0f0f"), "{out}");
    }

    #[test]
    fn messages_and_links_without_a_shard_mean_the_first() {
        let shards = Shards::parse(Some("DB,DB_2"), None).unwrap();
        assert_eq!(shards.named(None), Some(&s("DB")));
        assert_eq!(shards.named(Some("DB_2")), Some(&s("DB_2")));
        assert_eq!(shards.named(Some("DB_3")), None);
    }

    #[test]
    fn new_teams_go_to_the_emptiest_shard_first_listed_on_a_tie() {
        assert_eq!(
            least_loaded(&[(s("DB"), 0), (s("DB_2"), 0)]),
            Some(&s("DB"))
        );
        assert_eq!(
            least_loaded(&[(s("DB"), 1), (s("DB_2"), 0)]),
            Some(&s("DB_2"))
        );
        assert_eq!(
            least_loaded(&[(s("DB"), 4), (s("DB_2"), 7)]),
            Some(&s("DB"))
        );
        assert_eq!(least_loaded(&[]), None);
    }
}
