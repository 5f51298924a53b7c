//! Types every layer shares: who may do what ([`access`]), the wire time ([`time`]), keyset
//! pages ([`page`]), and the small enums stored as text and sent as JSON. Nothing here does I/O.

pub mod access;
pub mod discovery;
pub mod page;
pub mod time;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::time::UtcTime;

/// Declares an enum stored as text in PostgreSQL and sent as the same text in JSON.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $case:literal { $($(#[$variant_meta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
        #[serde(rename_all = $case)]
        #[sqlx(type_name = "text", rename_all = $case)]
        pub enum $name { $($(#[$variant_meta])* $variant),+ }
    };
}

text_enum!(
    /// Who may read a project besides its members.
    Visibility, "UPPERCASE" { Private, Public }
);

text_enum!(
    /// Who wrote a chat message.
    MessageRole, "lowercase" { User, Assistant, System }
);

text_enum!(
    /// Where an invite stands.
    InviteStatus, "UPPERCASE" { Pending, Accepted, Declined, Revoked, Expired }
);

text_enum!(
    /// A member's standing in a project: the owner, or a collaborator's role.
    MemberRole, "UPPERCASE" { Owner, Admin, Editor, Viewer }
);

text_enum!(
    /// A competition is open for results, then closed for good.
    CompetitionStatus, "UPPERCASE" { Active, Closed }
);

/// Which way a message page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Newest first, going back in time.
    #[default]
    Older,
    /// Oldest first, going forward.
    Newer,
}

/// How a usage summary groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    #[default]
    Day,
    Endpoint,
    Model,
}
