//! The store's read side beyond single items and the query port: the aggregate shards
//! in use and day counters over a range.

use super::*;

impl DynamoStore {
    /// Put `shards` on the registry of shard counts before the first write with it, so
    /// no reader can miss a shard that holds data.
    pub(super) async fn register_shards(&self, shards: u16) -> Result<(), StoreError> {
        if self
            .registered_shards
            .lock()
            .expect("not poisoned")
            .contains(&shards)
        {
            return Ok(());
        }
        self.update_key(s(keys::AGGREGATE_SHARDS_PK), s(keys::AGGREGATE_SHARDS_SK))
            .update_expression("ADD #counts :n")
            .expression_attribute_names("#counts", "counts")
            .expression_attribute_values(":n", AttributeValue::Ns(vec![shards.to_string()]))
            .send()
            .await
            .map_err(|e| classify("register aggregate shard count", &e))?;
        self.registered_shards
            .lock()
            .expect("not poisoned")
            .insert(shards);
        Ok(())
    }

    /// How many shards a day may use: the most any writer ever used, at least the
    /// configured count.
    pub async fn shards_to_read(&self) -> Result<u16, StoreError> {
        let out = self
            .get_key(s(keys::AGGREGATE_SHARDS_PK), s(keys::AGGREGATE_SHARDS_SK))
            .send()
            .await
            .map_err(|e| classify("read aggregate shard counts", &e))?;
        let used = out
            .item()
            .and_then(|i| i.get("counts"))
            .and_then(|v| v.as_ns().ok())
            .into_iter()
            .flatten()
            .filter_map(|n| n.parse::<u16>().ok())
            .max()
            .unwrap_or(0);
        Ok(used.max(self.aggregate_shards))
    }

    /// The summed counters of every day in `from..=to` (every shard ever written), read
    /// by key in BatchGetItem calls of 100 keys, several at once; unprocessed keys are
    /// retried with backoff. A day without feedback is absent.
    pub async fn day_range_counters(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, HashMap<String, i64>>, StoreError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let shards = self.shards_to_read().await?;
        let keys: Vec<Item> = feedloop_core::reports::days(from, to)
            .flat_map(|day| {
                (0..shards).map(move |shard| {
                    HashMap::from([
                        (schema::PK.to_owned(), s(keys::aggregate(day, shard))),
                        (schema::SK.to_owned(), s(keys::AGGREGATE)),
                    ])
                })
            })
            .collect();
        let chunks: Vec<Vec<Item>> = keys.chunks(BATCH_GET_KEYS).map(<[Item]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = stream::iter(chunks)
            .map(|chunk| self.batch_get(chunk, None))
            .buffer_unordered(BATCH_GET_PARALLEL)
            .try_collect()
            .await?;
        let mut by_day: BTreeMap<NaiveDate, HashMap<String, i64>> = BTreeMap::new();
        for item in pages.iter().flatten() {
            let Some(day) = str_attr(item, schema::PK).and_then(keys::aggregate_day) else {
                continue;
            };
            let total = by_day.entry(day).or_default();
            for (k, v) in item {
                if let (Some(name), Ok(num)) = (k.strip_prefix("c:"), v.as_n()) {
                    *total.entry(name.to_owned()).or_default() += num.parse::<i64>().unwrap_or(0);
                }
            }
        }
        Ok(by_day)
    }

    /// One BatchGetItem of at most 100 keys (only `projection`'s attributes, if given),
    /// until nothing is left unprocessed.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let ka = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .set_projection_expression(projection.map(str::to_owned))
            .build()
            .map_err(|e| StoreError::Permanent(format!("building batch get: {e}")))?;
        let mut request = HashMap::from([(self.table.clone(), ka)]);
        let mut items = Vec::new();
        for attempt in 0..8u32 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| classify("batch get aggregates", &e))?;
            if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                items.extend(found.iter().cloned());
            }
            request = out.unprocessed_keys().cloned().unwrap_or_default();
            if request.values().all(|ka| ka.keys().is_empty()) {
                return Ok(items);
            }
            // Unprocessed keys mean the table is throttling: back off before asking again.
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
        Err(StoreError::Throttled(
            "aggregate keys left unprocessed".into(),
        ))
    }
}
