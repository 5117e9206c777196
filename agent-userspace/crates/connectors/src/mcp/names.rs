//! Which action a JSON-RPC method becomes, and its params.
//!
//! Four methods have their own actions with the params policy needs: `tools/call` →
//! `mcp.tool.call {server, tool, arguments}`, `resources/read` → `mcp.resource.read
//! {server, uri}`, `prompts/get` → `mcp.prompt.get {server, name, arguments}` and
//! `initialize` (or `server/discover`, its 2026-07-28 counterpart) → `mcp.initialize {server,
//! client_name, client_version, protocol_version}`.
//! Every other method is `mcp.` + its path in snake case (`tools/list` → `mcp.tools.list`,
//! `notifications/initialized` → `mcp.notifications.initialized`) with `{server, method}`;
//! a method that would spell one of the four names above, or no valid name at all, is
//! `mcp.unknown {server, method}`, so no custom method can pass for a tool call.

use super::request::InvalidMessage;
use serde_json::{Map, Value};

const RESERVED: [&str; 4] = [
    "mcp.tool.call",
    "mcp.resource.read",
    "mcp.prompt.get",
    "mcp.initialize",
];

pub(crate) fn action_for(
    server: &str,
    method: &str,
    mut params: Map<String, Value>,
) -> Result<(String, Map<String, Value>), InvalidMessage> {
    let mut out = Map::new();
    out.insert("server".into(), Value::String(server.into()));
    let name = match method {
        "tools/call" => {
            out.insert(
                "tool".into(),
                string(&mut params, "name", InvalidMessage::Name)?,
            );
            out.insert("arguments".into(), arguments(&mut params)?);
            "mcp.tool.call".to_string()
        }
        "prompts/get" => {
            out.insert(
                "name".into(),
                string(&mut params, "name", InvalidMessage::Name)?,
            );
            out.insert("arguments".into(), arguments(&mut params)?);
            "mcp.prompt.get".to_string()
        }
        "resources/read" => {
            out.insert(
                "uri".into(),
                string(&mut params, "uri", InvalidMessage::Uri)?,
            );
            "mcp.resource.read".to_string()
        }
        "initialize" | "server/discover" => {
            // Handshake-era clients put these in the params; 2026-07-28 clients send them
            // in `_meta` of every request and open with `server/discover` instead.
            let meta = params.get("_meta").and_then(Value::as_object);
            let from_meta =
                |key: &str| meta.and_then(|m| m.get(&format!("io.modelcontextprotocol/{key}")));
            let info = params
                .get("clientInfo")
                .or_else(|| from_meta("clientInfo"))
                .and_then(Value::as_object);
            let version = params
                .get("protocolVersion")
                .or_else(|| from_meta("protocolVersion"));
            let text = |v: Option<&Value>| {
                Value::String(v.and_then(Value::as_str).unwrap_or("").to_string())
            };
            out.insert("client_name".into(), text(info.and_then(|i| i.get("name"))));
            out.insert(
                "client_version".into(),
                text(info.and_then(|i| i.get("version"))),
            );
            out.insert("protocol_version".into(), text(version));
            "mcp.initialize".to_string()
        }
        other => {
            out.insert("method".into(), Value::String(other.into()));
            generic_name(other)
        }
    };
    Ok((name, out))
}

fn string(
    params: &mut Map<String, Value>,
    key: &str,
    missing: InvalidMessage,
) -> Result<Value, InvalidMessage> {
    match params.remove(key) {
        Some(v @ Value::String(_)) => Ok(v),
        _ => Err(missing),
    }
}

/// Tool and prompt arguments, an object (empty when absent) that CEL reads as
/// `params.arguments.<name>`.
fn arguments(params: &mut Map<String, Value>) -> Result<Value, InvalidMessage> {
    match params.remove("arguments") {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(InvalidMessage::Arguments),
    }
}

/// `resources/templates/list` → `mcp.resources.templates.list`, `logging/setLevel` →
/// `mcp.logging.set_level`.
fn generic_name(method: &str) -> String {
    let mut parts = Vec::new();
    for part in method.split('/') {
        let mut snake = String::new();
        for ch in part.chars() {
            if ch.is_ascii_uppercase() {
                if !snake.is_empty() {
                    snake.push('_');
                }
                snake.push(ch.to_ascii_lowercase());
            } else if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' {
                snake.push(ch);
            } else {
                return "mcp.unknown".into();
            }
        }
        if !crate::template::is_identifier(&snake) {
            return "mcp.unknown".into();
        }
        parts.push(snake);
    }
    let name = format!("mcp.{}", parts.join("."));
    if RESERVED.contains(&name.as_str()) {
        return "mcp.unknown".into();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn act(method: &str, params: Value) -> (String, Value) {
        let Value::Object(p) = params else { panic!() };
        let (n, p) = action_for("s", method, p).unwrap();
        (n, Value::Object(p))
    }

    #[test]
    fn the_four_named_methods_carry_their_params() {
        assert_eq!(
            act(
                "initialize",
                json!({"protocolVersion":"2025-06-18","clientInfo":{"name":"claude","version":"1"}})
            ),
            (
                "mcp.initialize".into(),
                json!({"server":"s","client_name":"claude","client_version":"1","protocol_version":"2025-06-18"})
            )
        );
        assert_eq!(
            act("resources/read", json!({"uri":"repo://x"})),
            (
                "mcp.resource.read".into(),
                json!({"server":"s","uri":"repo://x"})
            )
        );
        assert_eq!(
            act("prompts/get", json!({"name":"review"})),
            (
                "mcp.prompt.get".into(),
                json!({"server":"s","name":"review","arguments":{}})
            )
        );
    }

    #[test]
    fn a_modern_discover_is_the_handshake_with_client_info_from_meta() {
        let meta = json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},
            "io.modelcontextprotocol/clientCapabilities":{}}});
        assert_eq!(
            act("server/discover", meta),
            (
                "mcp.initialize".into(),
                json!({"server":"s","client_name":"mcp","client_version":"0.1.0","protocol_version":"2026-07-28"})
            )
        );
    }

    #[test]
    fn other_methods_are_named_after_their_path() {
        assert_eq!(act("tools/list", json!({})).0, "mcp.tools.list");
        assert_eq!(
            act("logging/setLevel", json!({})).0,
            "mcp.logging.set_level"
        );
        assert_eq!(act("ping", json!({})).0, "mcp.ping");
        assert_eq!(
            act("notifications/cancelled", json!({})),
            (
                "mcp.notifications.cancelled".into(),
                json!({"server":"s","method":"notifications/cancelled"})
            )
        );
    }

    #[test]
    fn no_custom_method_can_spell_a_named_action() {
        assert_eq!(act("tool/call", json!({})).0, "mcp.unknown");
        assert_eq!(act("resource/read", json!({})).0, "mcp.unknown");
        assert_eq!(act("tools/../call", json!({})).0, "mcp.unknown");
        assert_eq!(act("", json!({})).0, "mcp.unknown");
        assert_eq!(act("x y", json!({})).0, "mcp.unknown");
    }

    #[test]
    fn bad_tool_arguments_are_invalid() {
        let Value::Object(p) = json!({"name":"t","arguments":"rm -rf"}) else {
            panic!()
        };
        assert_eq!(
            action_for("s", "tools/call", p),
            Err(InvalidMessage::Arguments)
        );
    }
}
