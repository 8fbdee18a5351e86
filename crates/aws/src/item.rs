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
