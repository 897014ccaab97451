//! The in-process fanout: a single task is the whole chat, so there are no other tasks to
//! carry events to, and presence is this process's own record.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Fanout, FanoutError, RoomEvent};
use crate::protocol::User;

/// Fanout for one process.
#[derive(Default)]
pub struct LocalFanout {
    /// room -> users present, ordered by id so member lists are stable.
    presence: Mutex<HashMap<String, BTreeMap<u64, User>>>,
}

impl LocalFanout {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Fanout for LocalFanout {
    fn name(&self) -> &'static str {
        "local"
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn subscribe(&self, _room: &str) {}

    fn unsubscribe(&self, _room: &str) {}

    async fn publish(&self, _room: &str, _event: &RoomEvent) -> Result<(), FanoutError> {
        Ok(())
    }

    async fn presence_add(&self, room: &str, user: &User) -> Result<(), FanoutError> {
        self.presence
            .lock()
            .entry(room.to_string())
            .or_default()
            .insert(user.id, user.clone());
        Ok(())
    }

    async fn presence_remove(&self, room: &str, user: &User) -> Result<(), FanoutError> {
        let mut presence = self.presence.lock();
        if let Some(users) = presence.get_mut(room) {
            users.remove(&user.id);
            if users.is_empty() {
                presence.remove(room);
            }
        }
        Ok(())
    }

    async fn presence(&self, room: &str) -> Result<Vec<User>, FanoutError> {
        Ok(self
            .presence
            .lock()
            .get(room)
            .map(|users| users.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn shutdown(&self) {}
}
