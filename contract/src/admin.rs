//! Table administration: create the tables of [`schema::tables`] (keys, indexes, TTL,
//! point-in-time recovery) and wait for them. Used by `chat-server create-tables` and the
//! tests; on AWS, Terraform owns the tables.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use crate::schema::{self, KeyAttr};

fn key_schema(hash: &KeyAttr, range: Option<&KeyAttr>) -> anyhow::Result<Vec<KeySchemaElement>> {
    let mut out = vec![
        KeySchemaElement::builder()
            .attribute_name(hash.name)
            .key_type(KeyType::Hash)
            .build()?,
    ];
    if let Some(range) = range {
        out.push(
            KeySchemaElement::builder()
                .attribute_name(range.name)
                .key_type(KeyType::Range)
                .build()?,
        );
    }
    Ok(out)
}

/// Creates the tables of [`schema::tables`] for `prefix` (keys, indexes, TTL, point-in-time
/// recovery) and waits until they are ACTIVE. Tables that already exist with the same keys
/// are left as they are (TTL and recovery are still switched on); one with other keys is an
/// error. For local endpoints and tests: on AWS, Terraform owns the tables.
pub async fn create_tables(client: &Client, prefix: &str) -> anyhow::Result<()> {
    let tables = schema::tables(prefix);
    for table in &tables {
        create_table(client, table)
            .await
            .with_context(|| format!("creating table {}", table.name))?;
    }
    for table in &tables {
        wait_active(client, &table.name).await?;
        if let Some(attribute) = table.ttl_attribute {
            enable_ttl(client, &table.name, attribute)
                .await
                .with_context(|| format!("enabling TTL on {}", table.name))?;
        }
        if table.point_in_time_recovery {
            client
                .update_continuous_backups()
                .table_name(&table.name)
                .point_in_time_recovery_specification(
                    PointInTimeRecoverySpecification::builder()
                        .point_in_time_recovery_enabled(true)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
                .with_context(|| format!("enabling point-in-time recovery on {}", table.name))?;
        }
    }
    Ok(())
}

async fn create_table(client: &Client, table: &schema::Table) -> anyhow::Result<()> {
    let mut attributes: Vec<&KeyAttr> = vec![&table.hash_key];
    attributes.extend(table.range_key.as_ref());
    for index in &table.global_secondary_indexes {
        attributes.push(&index.hash_key);
        attributes.extend(index.range_key.as_ref());
    }
    let mut definitions: Vec<AttributeDefinition> = Vec::new();
    for attr in attributes {
        if definitions.iter().any(|d| d.attribute_name() == attr.name) {
            continue;
        }
        definitions.push(
            AttributeDefinition::builder()
                .attribute_name(attr.name)
                .attribute_type(ScalarAttributeType::from(attr.kind))
                .build()?,
        );
    }
    let mut indexes = Vec::new();
    for index in &table.global_secondary_indexes {
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(&index.hash_key, index.range_key.as_ref())?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection))
                        .build(),
                )
                .build()?,
        );
    }
    let wanted_keys = key_schema(&table.hash_key, table.range_key.as_ref())?;
    let created = client
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::from(table.billing_mode))
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(wanted_keys.clone()))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => {
            let existing = describe(client, &table.name).await?;
            let keys = existing.key_schema();
            if keys != wanted_keys.as_slice() {
                bail!("it exists with keys {keys:?}, the schema wants {wanted_keys:?}");
            }
            let mut names: Vec<&str> = existing
                .global_secondary_indexes()
                .iter()
                .filter_map(|i| i.index_name())
                .collect();
            names.sort_unstable();
            let mut want: Vec<&str> = table
                .global_secondary_indexes
                .iter()
                .map(|i| i.name)
                .collect();
            want.sort_unstable();
            if names != want {
                bail!("it exists with indexes {names:?}, the schema wants {want:?}");
            }
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("{}", DisplayErrorContext(e))),
    }
}

async fn describe(
    client: &Client,
    name: &str,
) -> anyhow::Result<aws_sdk_dynamodb::types::TableDescription> {
    client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
        .with_context(|| format!("describing {name}"))?
        .table
        .with_context(|| format!("describing {name}: no table in the answer"))
}

/// Polls until the table and its indexes are ACTIVE (5 minutes at most).
async fn wait_active(client: &Client, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let table = describe(client, name).await?;
        let indexes_active = table
            .global_secondary_indexes()
            .iter()
            .all(|i| i.index_status() == Some(&IndexStatus::Active));
        if table.table_status() == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "table {name} is still {:?} after 5 minutes",
                table.table_status()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn enable_ttl(client: &Client, name: &str, attribute: &str) -> anyhow::Result<()> {
    let current = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))?;
    if let Some(ttl) = current.time_to_live_description() {
        let on = matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        if on {
            if ttl.attribute_name() == Some(attribute) {
                return Ok(());
            }
            bail!(
                "TTL is on attribute {:?}, the schema wants {attribute:?}",
                ttl.attribute_name()
            );
        }
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))?;
    Ok(())
}
