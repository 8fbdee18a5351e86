//! A deployed stack as the CLI finds it: its outputs and parameters by name.

use std::collections::HashMap;

use aws_config::SdkConfig;
use feedloop_kit::StoreError;

use crate::store::classify;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackInfo {
    pub outputs: HashMap<String, String>,
    pub parameters: HashMap<String, String>,
}

/// `None` when there is no such stack.
pub async fn describe(cfg: &SdkConfig, name: &str) -> Result<Option<StackInfo>, StoreError> {
    let out = aws_sdk_cloudformation::Client::new(cfg)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| classify("describe stack", &e))?;
    Ok(out.stacks().first().map(|s| StackInfo {
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value()?.to_owned(),
                ))
            })
            .collect(),
    }))
}
