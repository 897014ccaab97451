//! The rollout's items in the connections table (`chat_contract::rollout`), as the
//! rebalancing loop reaches them through the `Store` seam: this task's fleet heartbeat, its
//! removal while draining, and one consistent read of the control record and the fleet.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chat_contract::rollout::{self, Beat, CONTROL_KEY, Control, FLEET_KEY, FLEET_TASKS};

use super::DynamoStore;
use super::counts::Op;
use super::items::{s, unavailable};
use crate::store::{Rollout, StoreError};

impl DynamoStore {
    /// Writes this task's entry into the fleet item (creating the item the first time).
    pub(super) async fn write_beat(&self, task: &str, beat: &Beat) -> Result<(), StoreError> {
        let entry = beat.to_value();
        let update = || {
            self.counters.count(Op::UpdateItem);
            self.client
                .update_item()
                .table_name(&self.tables.connections)
                .key(rollout::KEY, s(FLEET_KEY))
                .update_expression("SET #tasks.#t = :e")
                .condition_expression("attribute_exists(#tasks)")
                .expression_attribute_names("#tasks", FLEET_TASKS)
                .expression_attribute_names("#t", task)
                .expression_attribute_values(":e", entry.clone())
                .send()
        };
        match update().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // First heartbeat of the fleet: create the item (unless another task just did).
                self.counters.count(Op::PutItem);
                let created = self
                    .client
                    .put_item()
                    .table_name(&self.tables.connections)
                    .set_item(Some(rollout::fleet_item(&[])))
                    .condition_expression("attribute_not_exists(#k)")
                    .expression_attribute_names("#k", rollout::KEY)
                    .send()
                    .await;
                if let Err(e) = created
                    && !e
                        .as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception())
                {
                    return Err(unavailable("PutItem fleet", e));
                }
                update()
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable("UpdateItem fleet", e))
            }
            Err(e) => Err(unavailable("UpdateItem fleet", e)),
        }
    }

    /// Removes this task's entry (drain), so it drops out of the counts at once.
    pub(super) async fn delete_beat(&self, task: &str) -> Result<(), StoreError> {
        self.counters.count(Op::UpdateItem);
        self.client
            .update_item()
            .table_name(&self.tables.connections)
            .key(rollout::KEY, s(FLEET_KEY))
            .update_expression("REMOVE #tasks.#t")
            .expression_attribute_names("#tasks", FLEET_TASKS)
            .expression_attribute_names("#t", task)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem fleet", e))?;
        Ok(())
    }

    /// Removes `task`'s entry if it still carries the heartbeat `at_ms`.
    pub(super) async fn prune_beat(&self, task: &str, at_ms: i64) -> Result<(), StoreError> {
        self.counters.count(Op::UpdateItem);
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key(rollout::KEY, s(FLEET_KEY))
            .update_expression("REMOVE #tasks.#t")
            .condition_expression("#tasks.#t.at_ms = :at")
            .expression_attribute_names("#tasks", FLEET_TASKS)
            .expression_attribute_names("#t", task)
            .expression_attribute_values(":at", AttributeValue::N(at_ms.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("UpdateItem fleet prune", e)),
        }
    }

    /// The control record and every beat of the fleet, in one consistent read each.
    pub(super) async fn read_rollout(&self) -> Result<Rollout, StoreError> {
        let get = |key: &'static str| {
            self.counters.count(Op::GetItem);
            self.client
                .get_item()
                .table_name(&self.tables.connections)
                .key(rollout::KEY, s(key))
                .consistent_read(true)
                .send()
        };
        let control = get(CONTROL_KEY)
            .await
            .map_err(|e| unavailable("GetItem control", e))?
            .item
            .as_ref()
            .and_then(Control::from_item);
        let fleet: HashMap<String, AttributeValue> = get(FLEET_KEY)
            .await
            .map_err(|e| unavailable("GetItem fleet", e))?
            .item
            .unwrap_or_default();
        Ok(Rollout {
            control,
            beats: rollout::beats(&fleet),
        })
    }
}
