//! MCP JSON-RPC request bodies (`cordon_connectors::mcp::parse_request`),
//! differential against serde_json, the kind of reader an MCP server uses.
//!
//! Checks: nothing panics; a body Cordon accepts is JSON to serde_json
//! too; each call Cordon judges is the message serde_json reads at that
//! place (same count, same `method`, same `id`), so the server cannot run
//! something other than what policy decided on.
#![no_main]

use cordon_connectors::mcp::parse_request;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_request("fuzz-server", Some("fuzz"), data) else {
        return;
    };
    let doc: Value = serde_json::from_slice(data)
        .unwrap_or_else(|e| panic!("Cordon accepted a body serde_json rejects: {e}"));
    let messages = match &doc {
        Value::Array(items) => {
            assert!(request.batch, "an array read as a single message");
            items.clone()
        }
        one => {
            assert!(!request.batch, "a single message read as a batch");
            vec![one.clone()]
        }
    };
    assert_eq!(
        messages.len(),
        request.calls.len(),
        "calls judged vs messages sent"
    );
    for (i, (call, message)) in request.calls.iter().zip(&messages).enumerate() {
        let method = message.get("method").and_then(Value::as_str);
        assert_eq!(call.method.as_deref(), method, "message {i}: method");
        let id = message.get("id").filter(|id| !id.is_null());
        if call.id.is_some() {
            assert_eq!(call.id.as_ref(), id, "message {i}: id");
        }
        assert!(!call.action.name.is_empty(), "message {i}: no action");
    }
});
