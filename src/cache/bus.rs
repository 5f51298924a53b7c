//! The invalidation bus: Redis pub/sub between instances of this service. Each message
//! carries a scope's new generation, or a clear. On every (re)subscription the local tier is
//! flushed: while disconnected, messages may have been missed.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;

use super::Inner;

pub fn channel(prefix: &str) -> String {
    format!("{prefix}invalidations")
}

pub enum Message {
    Generation { scope: String, value: u64 },
    Clear,
}

impl Message {
    pub fn encode(&self) -> String {
        match self {
            Message::Generation { scope, value } => format!("gen {value} {scope}"),
            Message::Clear => "clear".into(),
        }
    }

    fn decode(text: &str) -> Option<Message> {
        if text == "clear" {
            return Some(Message::Clear);
        }
        let rest = text.strip_prefix("gen ")?;
        let (value, scope) = rest.split_once(' ')?;
        Some(Message::Generation { scope: scope.to_owned(), value: value.parse().ok()? })
    }
}

/// Listens until the cache is dropped, reconnecting with a short backoff.
pub fn spawn_listener(client: redis::Client, channel: String, cache: Weak<Inner>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match subscribe(&client, &channel).await {
                Ok(pubsub) => {
                    backoff = Duration::from_millis(100);
                    {
                        let Some(inner) = cache.upgrade() else { return };
                        super::Cache(inner).on_resubscribed();
                    }
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        let Some(inner) = cache.upgrade() else { return };
                        let text: String = message.get_payload().unwrap_or_default();
                        match Message::decode(&text) {
                            Some(Message::Generation { scope, value }) => {
                                super::Cache(inner).raise_generation(&scope, value);
                            }
                            Some(Message::Clear) => super::Cache(inner).flush_local(),
                            None => tracing::warn!(%text, "unknown cache invalidation message"),
                        }
                    }
                    tracing::warn!("cache invalidation subscription lost; reconnecting");
                }
                Err(error) => tracing::debug!(%error, "cache invalidation subscription failed"),
            }
            if cache.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    })
}

async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(1), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "subscription timed out")))??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

impl super::Cache {
    fn on_resubscribed(&self) {
        self.flush_local();
        self.0.counters.reconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!("cache invalidation subscription up; local tier flushed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_even_with_spaces_in_the_scope() {
        let encoded = Message::Generation { scope: "project:a b".into(), value: 7 }.encode();
        match Message::decode(&encoded) {
            Some(Message::Generation { scope, value }) => assert_eq!((scope.as_str(), value), ("project:a b", 7)),
            _ => panic!("{encoded}"),
        }
        assert!(matches!(Message::decode("clear"), Some(Message::Clear)));
        assert!(Message::decode("gen x y").is_none());
    }
}
