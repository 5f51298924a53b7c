//! Marks: short-lived flags in the shared tier (a key with a TTL), visible to every instance,
//! for coordination rather than cached values (`service::reads` marks the users who just
//! wrote). They live beside the cache's keys, under the namespace but outside the cached
//! values' prefix, so clearing the cache leaves them alone. Without a reachable shared tier
//! they cannot be set or read: the caller falls back to what this process knows.

use std::time::Duration;

use super::Cache;

impl Cache {
    /// Sets the mark `name` for `ttl`; false when the shared tier is absent or failed.
    pub async fn set_mark(&self, name: &str, ttl: Duration) -> bool {
        let Some(tier) = &self.0.shared else { return false };
        let millis = ttl.as_millis().max(1) as u64;
        tier.run::<()>(redis::cmd("SET").arg(self.mark_key(name)).arg(1).arg("PX").arg(millis)).await.is_ok()
    }

    /// Whether the mark `name` is set; None when the shared tier is absent or cannot say.
    pub async fn is_marked(&self, name: &str) -> Option<bool> {
        let tier = self.0.shared.as_ref()?;
        tier.run::<bool>(redis::cmd("EXISTS").arg(self.mark_key(name))).await.ok()
    }

    fn mark_key(&self, name: &str) -> String {
        format!("{}:mark:{name}", self.0.settings.namespace)
    }
}
