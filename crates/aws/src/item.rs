//! The attribute helpers every DynamoDB adapter here writes and reads items with.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation;
use aws_sdk_dynamodb::types::{self, AttributeValue};
use feedloop_kit::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn str_attr<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// The JSON document an item keeps in `data`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    item: &Item,
    what: &str,
) -> Result<T, StoreError> {
    let data = str_attr(item, "data")
        .ok_or_else(|| StoreError::Permanent(format!("{what} item without data")))?;
    serde_json::from_str(data).map_err(|e| StoreError::Permanent(format!("decoding {what}: {e}")))
}

pub(crate) fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Permanent(format!("encoding {what}: {e}")))
}

pub(crate) fn build_err(
    what: &str,
) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError + '_ {
    move |e| StoreError::Permanent(format!("building {what}: {e}"))
}

/// Builders of requests that name one item: the table and the item's key set once.
macro_rules! keyed_builders {
    ($($name:ident -> $builder:ty = |$store:ident| $start:expr;)+) => {
        $(
            pub(crate) fn $name(&self, pk: AttributeValue, sk: AttributeValue) -> $builder {
                let $store = self;
                $start
                    .table_name($store.table())
                    .key(crate::schema::PK, pk)
                    .key(crate::schema::SK, sk)
            }
        )+
    };
}

/// Request builders already pointed at the store's table and, where a request names
/// one item, at that item's key: every adapter here names both the same way.
impl crate::store::DynamoStore {
    keyed_builders! {
        get_key -> operation::get_item::builders::GetItemFluentBuilder =
            |st| st.client().get_item();
        update_key -> operation::update_item::builders::UpdateItemFluentBuilder =
            |st| st.client().update_item();
        delete_key -> operation::delete_item::builders::DeleteItemFluentBuilder =
            |st| st.client().delete_item();
        // The parts of a transaction.
        tx_update_key -> types::builders::UpdateBuilder = |_st| types::Update::builder();
        tx_delete_key -> types::builders::DeleteBuilder = |_st| types::Delete::builder();
        tx_check_key -> types::builders::ConditionCheckBuilder =
            |_st| types::ConditionCheck::builder();
    }

    pub(crate) fn put(&self) -> operation::put_item::builders::PutItemFluentBuilder {
        self.client().put_item().table_name(self.table())
    }

    pub(crate) fn tx_put(&self) -> types::builders::PutBuilder {
        types::Put::builder().table_name(self.table())
    }

    pub(crate) fn query_table(&self) -> operation::query::builders::QueryFluentBuilder {
        self.client().query().table_name(self.table())
    }
}
