//! The wire description of a tool, as sent to models.

use crate::registry::ToolName;

/// A tool's name, description and JSON schema for its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Tool name.
    pub name: ToolName,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
}
