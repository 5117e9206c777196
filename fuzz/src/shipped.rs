//! The connectors Cordon ships (`policies/connectors/`), compiled into the
//! targets so a run never depends on the working directory.
use std::path::PathBuf;

use cordon_connectors::ConnectorSet;

pub const CONNECTOR_FILES: &[(&str, &str)] = &[
    (
        "anthropic.toml",
        include_str!("../../policies/connectors/anthropic.toml"),
    ),
    (
        "aws-bedrock-runtime.toml",
        include_str!("../../policies/connectors/aws-bedrock-runtime.toml"),
    ),
    (
        "aws-dynamodb.toml",
        include_str!("../../policies/connectors/aws-dynamodb.toml"),
    ),
    (
        "aws-s3.toml",
        include_str!("../../policies/connectors/aws-s3.toml"),
    ),
    (
        "aws-sts.toml",
        include_str!("../../policies/connectors/aws-sts.toml"),
    ),
    (
        "git.toml",
        include_str!("../../policies/connectors/git.toml"),
    ),
    (
        "github-mcp.toml",
        include_str!("../../policies/connectors/github-mcp.toml"),
    ),
    (
        "github.toml",
        include_str!("../../policies/connectors/github.toml"),
    ),
    (
        "openai.toml",
        include_str!("../../policies/connectors/openai.toml"),
    ),
    (
        "slack.toml",
        include_str!("../../policies/connectors/slack.toml"),
    ),
    (
        "stripe.toml",
        include_str!("../../policies/connectors/stripe.toml"),
    ),
];

/// The shipped connectors with a body limit of `body_limit` bytes.
pub fn connectors(body_limit: usize) -> ConnectorSet {
    let sources = CONNECTOR_FILES
        .iter()
        .map(|(name, text)| (PathBuf::from(name), text.to_string()));
    ConnectorSet::from_sources(sources)
        .expect("the shipped connectors load")
        .with_body_limit(body_limit)
}
