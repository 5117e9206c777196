//! The shipped-route table: method + URL + headers + body -> connector,
//! action and exact params. Shared by this crate's offline matcher test
//! (`shipped_routes.rs`) and the end-to-end test that sends every case
//! through the real proxy (`tests/tests/connector_routes.rs`).
#![allow(dead_code)]

use serde_json::{Value, json};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Clone, Debug)]
pub struct Case {
    pub method: &'static str,
    pub url: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Option<(&'static str, &'static str)>,
    pub connector: Option<&'static str>,
    pub action: &'static str,
    pub params: Value,
}

fn case(method: &'static str, url: &'static str, action: &'static str, params: Value) -> Case {
    let connector = url.split('/').nth(2).and_then(|host| match host {
        "api.github.com" | "github.com" => Some("github"),
        "api.stripe.com" => Some("stripe"),
        "api.openai.com" => Some("openai"),
        "api.anthropic.com" => Some("anthropic"),
        "slack.com" => Some("slack"),
        h if h.starts_with("bedrock-runtime.") && h.ends_with(".amazonaws.com") => {
            Some("aws-bedrock-runtime")
        }
        _ => None,
    });
    Case {
        method,
        url,
        headers: &[],
        body: None,
        connector,
        action,
        params,
    }
}

impl Case {
    fn json(mut self, body: &'static str) -> Self {
        self.body = Some((JSON, body));
        self
    }
    fn form(mut self, body: &'static str) -> Self {
        self.body = Some((FORM, body));
        self
    }
    fn body(mut self, content_type: &'static str, body: &'static str) -> Self {
        self.body = Some((content_type, body));
        self
    }
    fn headers(mut self, h: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = h;
        self
    }
}

fn github_cases() -> Vec<Case> {
    let or = |extra: Value| {
        let mut p = json!({"owner": "o", "repo": "r"});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    vec![
        case("POST", "https://api.github.com/repos/o/r/issues", "github.issue.create", or(json!({"title": "Bug"})))
            .json(r#"{"title": "Bug", "body": "x"}"#),
        case("PATCH", "https://api.github.com/repos/o/r/issues/7", "github.issue.update", or(json!({"number": "7", "state": "closed"})))
            .json(r#"{"state": "closed"}"#),
        case("POST", "https://api.github.com/repos/o/r/issues/7/comments", "github.issue.comment", or(json!({"number": "7"})))
            .json(r#"{"body": "hi"}"#),
        case("GET", "https://api.github.com/repos/o/r/issues?state=open", "github.issue.read", or(json!({}))),
        case("GET", "https://api.github.com/repos/o/r/issues/7", "github.issue.read", or(json!({"number": "7"}))),
        case("GET", "https://api.github.com/repos/o/r/issues/7/comments", "github.issue.read", or(json!({"number": "7"}))),
        case("POST", "https://api.github.com/repos/o/r/pulls", "github.pr.create",
            or(json!({"base": "main", "head": "feat", "title": "T", "draft": false})))
            .json(r#"{"base": "main", "head": "feat", "title": "T", "draft": false}"#),
        case("PATCH", "https://api.github.com/repos/o/r/pulls/12", "github.pr.update", or(json!({"number": "12", "state": "closed"})))
            .json(r#"{"state": "closed"}"#),
        case("PUT", "https://api.github.com/repos/o/r/pulls/12/merge", "github.pr.merge", or(json!({"number": "12", "merge_method": "squash"})))
            .json(r#"{"merge_method": "squash"}"#),
        case("POST", "https://api.github.com/repos/o/r/pulls/12/reviews", "github.pr.review", or(json!({"number": "12", "event": "APPROVE"})))
            .json(r#"{"event": "APPROVE", "body": "lgtm"}"#),
        case("GET", "https://api.github.com/repos/o/r/pulls", "github.pr.read", or(json!({}))),
        case("GET", "https://api.github.com/repos/o/r/pulls/12", "github.pr.read", or(json!({"number": "12"}))),
        case("GET", "https://api.github.com/repos/o/r/pulls/12/files", "github.pr.read", or(json!({"number": "12", "rest": "files"}))),
        case("POST", "https://api.github.com/repos/o/r/git/refs", "github.branch.create",
            or(json!({"ref": "refs/heads/feature/x", "sha": "abc", "branch": "feature/x"})))
            .json(r#"{"ref": "refs/heads/feature/x", "sha": "abc"}"#),
        // A tag is not a branch: `branch` stays absent.
        case("POST", "https://api.github.com/repos/o/r/git/refs", "github.branch.create", or(json!({"ref": "refs/tags/v1", "sha": "abc"})))
            .json(r#"{"ref": "refs/tags/v1", "sha": "abc"}"#),
        case("PATCH", "https://api.github.com/repos/o/r/git/refs/heads/main", "github.branch.update",
            or(json!({"branch": "main", "sha": "abc", "force": true})))
            .json(r#"{"sha": "abc", "force": true}"#),
        case("DELETE", "https://api.github.com/repos/o/r/git/refs/heads/feature/deep/x", "github.branch.delete",
            or(json!({"branch": "feature/deep/x"}))),
        case("DELETE", "https://api.github.com/repos/o/r/git/refs/heads/feature%2Fx", "github.branch.delete",
            or(json!({"branch": "feature/x"}))),
        case("PATCH", "https://api.github.com/repos/o/r/git/refs/tags/v1", "github.ref.update", or(json!({"ref": "tags/v1", "sha": "abc"})))
            .json(r#"{"sha": "abc"}"#),
        case("DELETE", "https://api.github.com/repos/o/r/git/refs/tags/v1", "github.ref.delete", or(json!({"ref": "tags/v1"}))),
        case("POST", "https://api.github.com/repos/o/r/branches/old/name/rename", "github.branch.rename",
            or(json!({"branch": "old/name", "new_name": "new"})))
            .json(r#"{"new_name": "new"}"#),
        case("GET", "https://api.github.com/repos/o/r/branches", "github.branch.read", or(json!({}))),
        case("GET", "https://api.github.com/repos/o/r/branches/release/1.x", "github.branch.read", or(json!({"branch": "release/1.x"}))),
        case("PUT", "https://api.github.com/repos/o/r/contents/docs/a%20b.md", "github.contents.write",
            or(json!({"path": "docs/a b.md", "message": "m", "branch": "dev"})))
            .json(r#"{"message": "m", "content": "aGk=", "branch": "dev"}"#),
        case("DELETE", "https://api.github.com/repos/o/r/contents/src/lib.rs", "github.contents.delete",
            or(json!({"path": "src/lib.rs", "message": "rm", "sha": "s1"})))
            .json(r#"{"message": "rm", "sha": "s1"}"#),
        case("GET", "https://api.github.com/repos/o/r/contents/README.md?ref=dev", "github.contents.read",
            or(json!({"path": "README.md", "ref": "dev"}))),
        case("POST", "https://api.github.com/user/repos", "github.repo.create", json!({"repo": "new", "private": true}))
            .json(r#"{"name": "new", "private": true}"#),
        case("POST", "https://api.github.com/orgs/acme/repos", "github.repo.create",
            json!({"owner": "acme", "repo": "svc", "visibility": "internal"}))
            .json(r#"{"name": "svc", "visibility": "internal"}"#),
        case("DELETE", "https://api.github.com/repos/o/r", "github.repo.delete", or(json!({}))),
        case("PATCH", "https://api.github.com/repos/o/r", "github.repo.update", or(json!({"archived": true})))
            .json(r#"{"archived": true}"#),
        case("GET", "https://api.github.com/repos/o/r", "github.repo.read", or(json!({}))),
        case("GET", "https://api.github.com/repos/o/r/commits/abc", "github.repo.read", or(json!({"rest": "commits/abc"}))),
        case("POST", "https://api.github.com/repos/o/r/releases", "github.release.create",
            or(json!({"tag": "v1.0", "target": "main", "draft": true})))
            .json(r#"{"tag_name": "v1.0", "target_commitish": "main", "draft": true}"#),
        case("GET", "https://api.github.com/repos/o/r/releases", "github.release.read", or(json!({}))),
        case("GET", "https://api.github.com/repos/o/r/releases/latest", "github.release.read", or(json!({"rest": "latest"}))),
        case("POST", "https://api.github.com/repos/o/r/actions/workflows/ci.yml/dispatches", "github.workflow.dispatch",
            or(json!({"workflow": "ci.yml", "ref": "main"})))
            .json(r#"{"ref": "main", "inputs": {}}"#),
        case("GET", "https://api.github.com/repos/o/r/actions/runs", "github.workflow.read", or(json!({"rest": "runs"}))),
        case("GET", "https://api.github.com/user", "github.user.read", json!({})),
        case("GET", "https://api.github.com/search/issues?q=is%3Aopen", "github.search.read", json!({"kind": "issues", "q": "is:open"})),
        case("GET", "https://api.github.com/rate_limit", "github.api.read", json!({"rest": "rate_limit"})),
        // git smart HTTP on github.com
        case("GET", "https://github.com/o/r.git/info/refs?service=git-upload-pack", "github.git.fetch", or(json!({}))),
        case("POST", "https://github.com/o/r.git/git-upload-pack", "github.git.fetch", or(json!({}))),
        case("GET", "https://github.com/o/r/info/refs?service=git-receive-pack", "github.git.push.advertise", or(json!({}))),
        case("POST", "https://github.com/o/r.git/git-receive-pack", "github.git.push", or(json!({}))),
        // API paths on github.com are not API calls.
        case("DELETE", "https://github.com/repos/o/r", "http.request",
            json!({"method": "DELETE", "host": "github.com", "port": 443, "path": "/repos/o/r", "query": ""})),
        // A known host without a route keeps its connector, so its credential can still apply.
        case("POST", "https://api.github.com/graphql", "http.request",
            json!({"method": "POST", "host": "api.github.com", "port": 443, "path": "/graphql", "query": ""}))
            .json(r#"{"query": "{ viewer { login } }"}"#),
    ]
}

fn stripe_cases() -> Vec<Case> {
    vec![
        case(
            "POST",
            "https://api.stripe.com/v1/charges",
            "stripe.charge.create",
            json!({"amount": 2000, "currency": "usd"}),
        )
        .form("amount=2000&currency=usd&source=tok_visa"),
        case(
            "POST",
            "https://api.stripe.com/v1/charges",
            "stripe.charge.create",
            json!({"amount": 2000, "currency": "usd"}),
        )
        .json(r#"{"amount": 2000, "currency": "usd"}"#),
        case(
            "POST",
            "https://api.stripe.com/v1/charges",
            "stripe.charge.create",
            json!({"amount": 2000, "customer": "cus_1"}),
        )
        .json(r#"{"amount": "2000", "customer": "cus_1"}"#),
        case(
            "POST",
            "https://api.stripe.com/v1/charges/ch_1/capture",
            "stripe.charge.capture",
            json!({"id": "ch_1", "amount": 50}),
        )
        .form("amount=50"),
        case(
            "POST",
            "https://api.stripe.com/v1/payment_intents",
            "stripe.payment_intent.create",
            json!({"amount": 500, "currency": "eur", "confirm": true, "account": "acct_1"}),
        )
        .headers(&[("stripe-account", "acct_1")])
        .form("amount=500&currency=eur&confirm=true&metadata%5Border%5D=42"),
        case(
            "POST",
            "https://api.stripe.com/v1/payment_intents/pi_1/confirm",
            "stripe.payment_intent.confirm",
            json!({"id": "pi_1"}),
        )
        .form(""),
        case(
            "POST",
            "https://api.stripe.com/v1/payment_intents/pi_1/capture",
            "stripe.payment_intent.capture",
            json!({"id": "pi_1", "amount": 100}),
        )
        .form("amount_to_capture=100"),
        case(
            "POST",
            "https://api.stripe.com/v1/payment_intents/pi_1/cancel",
            "stripe.payment_intent.cancel",
            json!({"id": "pi_1"}),
        ),
        case(
            "POST",
            "https://api.stripe.com/v1/payment_intents/pi_1",
            "stripe.payment_intent.update",
            json!({"id": "pi_1", "amount": 700}),
        )
        .form("amount=700"),
        case(
            "POST",
            "https://api.stripe.com/v1/refunds",
            "stripe.refund.create",
            json!({"amount": 300, "charge": "ch_1"}),
        )
        .form("charge=ch_1&amount=300"),
        case(
            "POST",
            "https://api.stripe.com/v1/customers",
            "stripe.customer.create",
            json!({"email": "a@b.c"}),
        )
        .form("email=a%40b.c&name=A+B"),
        case(
            "POST",
            "https://api.stripe.com/v1/customers/cus_1",
            "stripe.customer.update",
            json!({"id": "cus_1", "email": "x@y.z"}),
        )
        .form("email=x%40y.z"),
        case(
            "DELETE",
            "https://api.stripe.com/v1/customers/cus_1",
            "stripe.customer.delete",
            json!({"id": "cus_1"}),
        ),
        case(
            "POST",
            "https://api.stripe.com/v1/transfers",
            "stripe.transfer.create",
            json!({"amount": 100, "currency": "usd", "destination": "acct_2"}),
        )
        .form("amount=100&currency=usd&destination=acct_2"),
        case(
            "POST",
            "https://api.stripe.com/v1/payouts",
            "stripe.payout.create",
            json!({"amount": 900, "currency": "usd"}),
        )
        .json(r#"{"amount": 900, "currency": "usd"}"#),
        case(
            "GET",
            "https://api.stripe.com/v1/charges",
            "stripe.api.read",
            json!({"resource": "charges"}),
        ),
        case(
            "GET",
            "https://api.stripe.com/v1/charges/ch_1",
            "stripe.api.read",
            json!({"resource": "charges", "rest": "ch_1"}),
        ),
    ]
}

fn llm_cases() -> Vec<Case> {
    vec![
        case("POST", "https://api.openai.com/v1/chat/completions", "openai.chat.create",
            json!({"model": "gpt-4o", "max_tokens": 100, "stream": true}))
            .json(r#"{"model": "gpt-4o", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#),
        case("POST", "https://api.openai.com/v1/responses", "openai.response.create", json!({"model": "o3", "max_tokens": 50}))
            .json(r#"{"model": "o3", "input": "hi", "max_output_tokens": 50}"#),
        case("POST", "https://api.openai.com/v1/embeddings", "openai.embedding.create", json!({"model": "text-embedding-3-small"}))
            .json(r#"{"model": "text-embedding-3-small", "input": "x"}"#),
        case("POST", "https://api.openai.com/v1/completions", "openai.completion.create", json!({"model": "gpt-3.5-turbo-instruct", "max_tokens": 5}))
            .json(r#"{"model": "gpt-3.5-turbo-instruct", "prompt": "a", "max_tokens": 5}"#),
        case("POST", "https://api.openai.com/v1/images/generations", "openai.image.create", json!({"model": "dall-e-3", "n": 1}))
            .json(r#"{"model": "dall-e-3", "prompt": "cat", "n": 1}"#),
        case("POST", "https://api.openai.com/v1/audio/transcriptions", "openai.audio.transcribe", json!({"model": "whisper-1"}))
            .body("multipart/form-data; boundary=BB",
                "--BB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\r\nID3...\r\n--BB\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--BB--\r\n"),
        case("POST", "https://api.openai.com/v1/files", "openai.file.create", json!({"purpose": "fine-tune"}))
            .body("multipart/form-data; boundary=BB",
                "--BB\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--BB--\r\n"),
        case("POST", "https://api.openai.com/v1/fine_tuning/jobs", "openai.fine_tune.create", json!({"model": "gpt-4o-mini"}))
            .json(r#"{"model": "gpt-4o-mini", "training_file": "file-1"}"#),
        case("GET", "https://api.openai.com/v1/models", "openai.api.read", json!({"rest": "models"})),
        case("POST", "https://api.anthropic.com/v1/messages", "anthropic.message.create",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 1024}))
            .json(r#"{"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}"#),
        case("POST", "https://api.anthropic.com/v1/messages/count_tokens", "anthropic.message.count_tokens", json!({"model": "claude-opus-4-1"}))
            .json(r#"{"model": "claude-opus-4-1", "messages": []}"#),
        case("POST", "https://api.anthropic.com/v1/messages/batches", "anthropic.batch.create", json!({}))
            .json(r#"{"requests": []}"#),
        case("POST", "https://api.anthropic.com/v1/complete", "anthropic.completion.create", json!({"model": "claude-2.1", "max_tokens": 300}))
            .json(r#"{"model": "claude-2.1", "max_tokens_to_sample": 300, "prompt": "x"}"#),
        case("GET", "https://api.anthropic.com/v1/models", "anthropic.api.read", json!({"rest": "models"})),
    ]
}

/// Bedrock's REST paths name the operation; the model id (with its `:`
/// version suffix, percent-encoded as the AWS SDKs send it) is the param.
fn bedrock_cases() -> Vec<Case> {
    const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
    vec![
        case("POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            "aws.bedrock.invoke_model", json!({"model": HAIKU}))
            .json(r#"{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": []}"#),
        case("POST", "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream",
            "aws.bedrock.invoke_model_with_response_stream", json!({"model": HAIKU}))
            .json(r#"{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": []}"#),
        case("POST", "https://bedrock-runtime.eu-west-1.amazonaws.com/model/amazon.nova-lite-v1:0/converse",
            "aws.bedrock.converse", json!({"model": "amazon.nova-lite-v1:0"}))
            .json(r#"{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}"#),
        case("POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse-stream",
            "aws.bedrock.converse_stream", json!({"model": "amazon.nova-lite-v1:0"}))
            .json(r#"{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}"#),
    ]
}

fn slack_cases() -> Vec<Case> {
    vec![
        case("POST", "https://slack.com/api/chat.postMessage", "slack.message.post", json!({"channel": "C1"}))
            .body("application/json; charset=utf-8", r#"{"channel": "C1", "text": "hi"}"#),
        case("POST", "https://slack.com/api/chat.postMessage", "slack.message.post", json!({"channel": "C1"}))
            .form("channel=C1&text=hi"),
        case("POST", "https://slack.com/api/chat.postMessage?channel=C9", "slack.message.post", json!({"channel": "C9"})),
        case("POST", "https://slack.com/api/chat.postEphemeral", "slack.message.post_ephemeral", json!({"channel": "C1", "user": "U1"}))
            .json(r#"{"channel": "C1", "user": "U1", "text": "psst"}"#),
        case("POST", "https://slack.com/api/chat.scheduleMessage", "slack.message.schedule", json!({"channel": "C1"}))
            .json(r#"{"channel": "C1", "post_at": 1, "text": "later"}"#),
        case("POST", "https://slack.com/api/chat.update", "slack.message.update", json!({"channel": "C1"}))
            .form("channel=C1&ts=1.2&text=x"),
        case("POST", "https://slack.com/api/chat.delete", "slack.message.delete", json!({"channel": "C1"}))
            .form("channel=C1&ts=1.2"),
        case("POST", "https://slack.com/api/files.upload", "slack.file.upload", json!({"channel": "C2", "filename": "a.txt"}))
            .body("multipart/form-data; boundary=xyz",
                "--xyz\r\nContent-Disposition: form-data; name=\"channels\"\r\n\r\nC2\r\n--xyz\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\na.txt\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--xyz--\r\n"),
        case("GET", "https://slack.com/api/files.getUploadURLExternal?filename=a.txt&length=5", "slack.file.upload_url.get", json!({"filename": "a.txt"})),
        case("POST", "https://slack.com/api/files.completeUploadExternal", "slack.file.upload", json!({"channel": "C3"}))
            .json(r#"{"files": [{"id": "F1"}], "channel_id": "C3"}"#),
        case("GET", "https://slack.com/api/conversations.history?channel=C1", "slack.conversation.read", json!({"channel": "C1"})),
        case("POST", "https://slack.com/api/conversations.list", "slack.conversation.list", json!({})).form("limit=10"),
    ]
}

fn generic_cases() -> Vec<Case> {
    vec![
        case(
            "GET",
            "https://gitlab.example.com/group/sub/proj.git/info/refs?service=git-upload-pack",
            "git.fetch",
            json!({"host": "gitlab.example.com", "port": 443, "repo": "group/sub/proj"}),
        ),
        case(
            "POST",
            "https://gitlab.example.com:8443/group/proj.git/git-upload-pack",
            "git.fetch",
            json!({"host": "gitlab.example.com", "port": 8443, "repo": "group/proj"}),
        ),
        case(
            "GET",
            "https://git.example.org/proj/info/refs?service=git-receive-pack",
            "git.push.advertise",
            json!({"host": "git.example.org", "port": 443, "repo": "proj"}),
        ),
        case(
            "POST",
            "https://git.example.org/a/b.git/git-receive-pack",
            "git.push",
            json!({"host": "git.example.org", "port": 443, "repo": "a/b"}),
        ),
        case(
            "GET",
            "https://example.com/some/where?x=1&y=2",
            "http.request",
            json!({"method": "GET", "host": "example.com", "port": 443, "path": "/some/where", "query": "x=1&y=2"}),
        ),
        // Stripe with a path no route knows.
        case(
            "POST",
            "https://api.stripe.com/v2/core/events",
            "http.request",
            json!({"method": "POST", "host": "api.stripe.com", "port": 443, "path": "/v2/core/events", "query": ""}),
        ),
    ]
}

pub fn all_cases() -> Vec<Case> {
    [
        github_cases(),
        stripe_cases(),
        llm_cases(),
        bedrock_cases(),
        slack_cases(),
        generic_cases(),
    ]
    .concat()
}
