//! Who is signed in, and the read-only report links: what the top bar, the sign-in page
//! and a report's *Share* panel show.

use serde::{Deserialize, Serialize};

/// What an account may do. `viewer` reads; `editor` also launches, labels and edits, and
/// makes share links; `owner` also sees and revokes every share link. Accounts are made
/// with `inoculab user add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The account of this request, as the pages see it (`None` on a server without sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub name: String,
    pub role: Role,
}

/// A share link as its experiment's report lists it (never with its token, which is shown
/// once, when it is made).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareLinkView {
    pub id: String,
    pub experiment_id: i64,
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub expired: bool,
}

/// A link just made: the only time its token (in `path`) is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewShareLink {
    pub link: ShareLinkView,
    /// `/share/TOKEN`.
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order_by_power() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Owner);
    }
}
