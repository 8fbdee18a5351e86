//! The attribute helpers every DynamoDB adapter here writes and reads items with.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
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

/// Request builders already pointed at the store's table and, where a request names
/// one item, at that item's key: every adapter here names both the same way.
impl crate::store::DynamoStore {
    pub(crate) fn get_key(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.client()
            .get_item()
            .table_name(self.table())
            .key(crate::schema::PK, pk)
            .key(crate::schema::SK, sk)
    }

    pub(crate) fn update_key(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client()
            .update_item()
            .table_name(self.table())
            .key(crate::schema::PK, pk)
            .key(crate::schema::SK, sk)
    }

    pub(crate) fn delete_key(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder {
        self.client()
            .delete_item()
            .table_name(self.table())
            .key(crate::schema::PK, pk)
            .key(crate::schema::SK, sk)
    }

    pub(crate) fn put(
        &self,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.client().put_item().table_name(self.table())
    }

    pub(crate) fn query_table(
        &self,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client().query().table_name(self.table())
    }

    // The same for the parts of a transaction.

    pub(crate) fn tx_put(&self) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        aws_sdk_dynamodb::types::Put::builder().table_name(self.table())
    }

    pub(crate) fn tx_update_key(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.table())
            .key(crate::schema::PK, pk)
            .key(crate::schema::SK, sk)
    }

    pub(crate) fn tx_delete_key(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::types::builders::DeleteBuilder {
        aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.table())
            .key(crate::schema::PK, pk)
            .key(crate::schema::SK, sk)
    }

    pub(crate) fn tx_check_key(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::types::builders::ConditionCheckBuilder {
        aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(self.table())
            .key(crate::schema::PK, pk)
            .key(crate::schema::SK, sk)
    }
}
