//! Usage cost from the usage the APIs report.

mod common;

use common::shipped;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn openai_chat_usage_is_priced_by_model() {
    let body = br#"{"model": "gpt-4o-2024-08-06", "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}"#;
    // 1000 * 2.5 / 1e6 + 500 * 10 / 1e6
    assert!(close(shipped().usage_cost("openai", body), 0.0075));
}

#[test]
fn the_most_specific_model_glob_wins() {
    let body =
        br#"{"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1000000, "completion_tokens": 0}}"#;
    assert!(close(shipped().usage_cost("openai", body), 0.15));
    let price = shipped().model_price("openai", "gpt-4-0613").unwrap();
    assert_eq!(price.input_per_mtok, 30.0);
}

#[test]
fn openai_responses_usage_fields_are_read() {
    let body = br#"{"model": "o3", "usage": {"input_tokens": 2000000, "output_tokens": 1000000}}"#;
    assert!(close(shipped().usage_cost("openai", body), 12.0));
}

#[test]
fn anthropic_usage_includes_cache_tokens() {
    let body = br#"{"model": "claude-sonnet-4-5-20250929", "usage": {"input_tokens": 100, "cache_read_input_tokens": 900, "output_tokens": 1000}}"#;
    // (100 + 900) * 3 / 1e6 + 1000 * 15 / 1e6
    assert!(close(shipped().usage_cost("anthropic", body), 0.018));
}

#[test]
fn anthropic_stream_usage_is_taken_from_the_events() {
    let body = b"event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-3-5-haiku-20241022\",\"usage\":{\"input_tokens\":1000,\"output_tokens\":1}}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":250}}\n\n";
    // 1000 * 0.8 / 1e6 + 250 * 4 / 1e6
    assert!(close(shipped().usage_cost("anthropic", body), 0.0018));
}

#[test]
fn unknown_models_are_charged_at_the_catch_all_price() {
    let body = br#"{"model": "brand-new-model", "usage": {"prompt_tokens": 1000000, "completion_tokens": 0}}"#;
    assert!(close(shipped().usage_cost("openai", body), 150.0));
}

#[test]
fn no_usage_or_no_pricing_gives_no_cost() {
    let set = shipped();
    assert_eq!(set.usage_cost("openai", br#"{"model": "gpt-4o"}"#), None);
    assert_eq!(set.usage_cost("openai", b"not json"), None);
    assert_eq!(
        set.usage_cost(
            "github",
            br#"{"model": "gpt-4o", "usage": {"prompt_tokens": 1}}"#
        ),
        None
    );
    assert_eq!(set.usage_cost("nope", b"{}"), None);
}

#[test]
fn bedrock_invoke_answers_give_tokens_and_cost_and_converse_answers_tokens_only() {
    let set = shipped();
    let invoke = br#"{"id": "msg_bdrk_1", "type": "message", "role": "assistant", "model": "claude-3-haiku-20240307", "content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 2000, "output_tokens": 400}}"#;
    let u = set.usage("aws-bedrock-runtime", invoke).unwrap();
    assert_eq!((u.tokens_in, u.tokens_out), (Some(2000), Some(400)));
    // 2000 * 0.25 / 1e6 + 400 * 1.25 / 1e6
    assert!(close(u.cost_usd, 0.001));
    let converse = br#"{"output": {"message": {"role": "assistant"}}, "usage": {"inputTokens": 30, "outputTokens": 7, "totalTokens": 37}}"#;
    let u = set.usage("aws-bedrock-runtime", converse).unwrap();
    assert_eq!(
        (u.tokens_in, u.tokens_out, u.cost_usd),
        (Some(30), Some(7), None)
    );
    assert_eq!(
        set.usage("aws-bedrock-runtime", br#"{"model": "claude-3-haiku"}"#),
        None
    );
}
