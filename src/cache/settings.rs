//! The cache's settings (`[cache]`): namespace, local tier bounds, and TTLs per kind within
//! the seed's range of one minute to 30 days. `local_ttl_secs` bounds what this process trusts
//! without checking: a remembered generation, an entry made while Redis could not be asked,
//! and the kinds never stored in Redis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::kinds::{CacheTtls, Kind};

/// The cache switch, changeable at runtime (`switches`): a step of a gradual rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Both tiers (the local one alone without Redis).
    #[default]
    On,
    /// This process's tier only: no value is read from or stored in Redis. Invalidations
    /// still go through Redis, so instances still on both tiers stay correct.
    Local,
    /// No cache: every read goes to the database. Writes still invalidate.
    Off,
}

impl CacheMode {
    pub fn name(self) -> &'static str {
        match self {
            CacheMode::On => "on",
            CacheMode::Local => "local",
            CacheMode::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// `on`, `local` or `off`; switchable without a restart (SIGHUP, `/api/admin/switches`).
    pub mode: CacheMode,
    /// Key prefix in Redis (`<namespace>:v1:`); `CACHE_NAMESPACE`.
    pub namespace: String,
    pub local_max_bytes: u64,
    pub local_ttl_secs: u64,
    pub ttl_secs: CacheTtls,
    /// Rate-limit counters kept in this process at most (one per client and route class),
    /// whatever the number of distinct clients; the least recently used go first.
    pub rate_limit_keys: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            mode: CacheMode::On,
            namespace: "vibing2".into(),
            local_max_bytes: 100 * 1024 * 1024,
            local_ttl_secs: 10,
            ttl_secs: CacheTtls::default(),
            rate_limit_keys: 100_000,
        }
    }
}

/// The shortest and longest shared-tier TTL the seed allows.
const TTL_RANGE_SECS: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

impl CacheSettings {
    pub fn shared_ttl(&self, kind: Kind) -> Duration {
        self.ttl_secs.get(kind)
    }

    /// How long this process keeps an entry named by a current generation: the kind's TTL.
    /// A write moves the generation, so the entry is unreachable at once wherever the write is
    /// heard. Kinds kept out of Redis for the sake of revocation (sessions, access facts) keep
    /// `local_ttl_secs`, the bound when an invalidation cannot be carried at all.
    pub fn local_ttl(&self, kind: Kind) -> Duration {
        if kind.shared() {
            self.shared_ttl(kind)
        } else {
            self.unchecked_ttl(kind)
        }
    }

    /// How long this process keeps an entry no invalidation can reach (made while Redis could
    /// not be asked for the generation): `local_ttl_secs`, never longer than the shared tier.
    pub fn unchecked_ttl(&self, kind: Kind) -> Duration {
        Duration::from_secs(self.local_ttl_secs).min(self.shared_ttl(kind))
    }

    /// How long a remembered generation is trusted before it is checked with Redis again.
    pub fn recheck_after(&self) -> Duration {
        Duration::from_secs(self.local_ttl_secs)
    }

    /// The longest TTL of any kind: generation counters must outlive every entry.
    pub fn longest_ttl(&self) -> Duration {
        Kind::ALL.iter().map(|kind| self.shared_ttl(*kind)).max().unwrap_or(Duration::from_secs(60))
    }

    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(kind) = Kind::ALL.iter().find(|kind| !TTL_RANGE_SECS.contains(&self.shared_ttl(**kind).as_secs())) {
            return Err(format!("cache.ttl_secs.{} must be 60 to 2592000 seconds (1 minute to 30 days)", kind.name()));
        }
        if self.local_ttl_secs == 0 || self.local_max_bytes == 0 || self.rate_limit_keys == 0 {
            return Err(
                "cache.local_ttl_secs, cache.local_max_bytes and cache.rate_limit_keys must be greater than zero"
                    .into(),
            );
        }
        let namespace_ok = !self.namespace.is_empty()
            && self.namespace.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !namespace_ok {
            return Err("CACHE_NAMESPACE must be letters, digits, '-', '_' or '.'".into());
        }
        Ok(())
    }
}
