//! The kinds of cached data, declared once: each kind's name (its key segment, its stats
//! label and its TTL setting) and its default shared-tier TTL.

use std::time::Duration;

use serde::{Deserialize, Serialize};

macro_rules! cache_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:ident, $default_ttl_secs:expr;)+) => {
        /// The kinds of cached data, each with its own TTLs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Kind {
            $($(#[$doc])* $kind,)+
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$kind,)+];

            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$kind => stringify!($name),)+
                }
            }
        }

        /// Shared-tier TTLs in seconds, one setting per kind (`cache.ttl_secs.<kind>`).
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct CacheTtls {
            $(pub $name: u64,)+
        }

        impl Default for CacheTtls {
            fn default() -> Self {
                Self { $($name: $default_ttl_secs,)+ }
            }
        }

        impl CacheTtls {
            pub fn get(&self, kind: Kind) -> Duration {
                Duration::from_secs(match kind {
                    $(Kind::$kind => self.$name,)+
                })
            }
        }
    };
}

cache_kinds! {
    /// A project's metadata.
    Project => project, 300;
    /// The first page of a project's file listing.
    FileListing => file_listing, 300;
    /// The newest page of a project's chat.
    FirstMessagePage => first_message_page, 60;
    /// The first page of a member's project list.
    ProjectList => project_list, 60;
    /// A user's own profile.
    User => user, 3600;
    /// Whose a session is and until when (never the token).
    Session => session, 86_400;
    /// Discovery pages.
    Discovery => discovery, 60;
    /// Usage summaries.
    UsageSummary => usage_summary, 60;
    /// What a caller's read of a project is checked on (owner, visibility, the caller's role).
    Access => access, 300;
}

impl Kind {
    /// Whether entries of the kind are kept in the shared tier as well. Sessions and access
    /// facts are not: when a logout's or a removal's invalidation cannot reach Redis, a shared
    /// entry could serve what was revoked to other instances for its whole TTL, while a local
    /// entry lasts at most `cache.local_ttl_secs`. Each lookup is one indexed read.
    pub fn shared(self) -> bool {
        !matches!(self, Kind::Session | Kind::Access)
    }
}
