//! AWS requests as actions: `aws.<service>.<operation>`.
//!
//! The connector file format maps paths to actions; AWS names its
//! operations elsewhere (the `X-Amz-Target` header of JSON protocols, the
//! `Action` parameter of query protocols, and for S3 the method, path and
//! sub-resource), so the naming is code: the proxy calls [`aws_action`] for
//! requests to a connector whose credential is `aws-role`.
//!
//! The service is the signing name from the request's credential scope
//! (the name IAM uses: `s3`, `dynamodb`, `sts`, `bedrock`), or the host's
//! first label when the request is unsigned. Operations are written in
//! snake case (`GetItem` becomes `get_item`); the AWS spelling is kept in
//! the `operation` param.

use serde_json::{Map, Value};

use super::auth;
use super::encode::{decode, query_pairs};
use super::head::RequestHead;
use super::s3_action;

/// The action an AWS request is.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsAction {
    /// `aws.dynamodb.get_item`.
    pub name: String,
    /// `service`, `operation`, `region`, and per service `bucket`, `key`,
    /// `table`, `model`, `role_arn`, `copy_source`.
    pub params: Map<String, Value>,
}

/// Names `head` (and the start of its body, for `Action=` forms and
/// DynamoDB's `TableName`). `None` when it is not an AWS request: no SigV4
/// scope and no `*.amazonaws.com` host.
pub fn aws_action(head: &RequestHead<'_>, body: Option<&[u8]>) -> Option<AwsAction> {
    let scope = auth::read(head).ok().map(|s| s.scope);
    let host = head
        .host
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let service = match &scope {
        Some(s) => s.service.clone(),
        None => service_from_host(&host)?,
    };
    let mut params = Map::new();
    params.insert("service".into(), Value::from(service.as_str()));
    if let Some(s) = &scope {
        params.insert("region".into(), Value::from(s.region.as_str()));
    }
    let body_text = body.and_then(|b| std::str::from_utf8(b).ok());
    let operation = if let Some(target) = header(head, "x-amz-target") {
        target.rsplit('.').next().map(str::to_string)
    } else if let Some(action) = action_param(head, body_text) {
        Some(action)
    } else if service == "s3" {
        Some(s3_action::name(head, &host, &mut params))
    } else if service == "bedrock" {
        bedrock_operation(head.path, &mut params)
    } else {
        None
    };
    let operation = operation.unwrap_or_else(|| "Unknown".to_string());
    json_params(&service, body_text, &mut params);
    if let Some(role) = form_or_query(head, body_text, "RoleArn") {
        params.insert("role_arn".into(), Value::from(role));
    }
    params.insert("operation".into(), Value::from(operation.as_str()));
    Some(AwsAction {
        name: format!("aws.{}.{}", action_part(&service), snake_case(&operation)),
        params,
    })
}

fn header<'a>(head: &RequestHead<'a>, name: &str) -> Option<&'a str> {
    head.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `sts.amazonaws.com`, `dynamodb.eu-west-1.amazonaws.com`,
/// `bedrock-runtime.us-east-1.amazonaws.com`, `bucket.s3.amazonaws.com`.
fn service_from_host(host: &str) -> Option<String> {
    let rest = host.strip_suffix(".amazonaws.com")?;
    let labels: Vec<&str> = rest.split('.').collect();
    if labels.iter().any(|l| *l == "s3" || l.starts_with("s3-")) {
        return Some("s3".into());
    }
    Some(match labels.first()? {
        &"bedrock-runtime" => "bedrock".into(),
        first => first.to_string(),
    })
}

fn action_param(head: &RequestHead<'_>, body: Option<&str>) -> Option<String> {
    form_or_query(head, body, "Action")
}

/// A parameter from the query, or from a form body.
fn form_or_query(head: &RequestHead<'_>, body: Option<&str>, name: &str) -> Option<String> {
    if let Some((_, v)) = query_pairs(head.query).into_iter().find(|(n, _)| n == name) {
        return Some(v);
    }
    let body = body?;
    // As the connectors read bodies: the declared type, or without one a
    // body that does not start like JSON is a form.
    let form = match header(head, "content-type") {
        Some(ct) => ct.starts_with("application/x-www-form-urlencoded"),
        None => !body.trim_start().starts_with(['{', '[']),
    };
    if !form {
        return None;
    }
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (decode(k) == name).then(|| decode(&v.replace('+', " ")))
    })
}

/// Bedrock runtime's REST paths: `/model/{modelId}/invoke` and friends.
fn bedrock_operation(path: &str, params: &mut Map<String, Value>) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["model", model, verb] = segments.as_slice() else {
        return None;
    };
    params.insert("model".into(), Value::from(decode(model)));
    Some(
        match *verb {
            "invoke" => "InvokeModel",
            "invoke-with-response-stream" => "InvokeModelWithResponseStream",
            "converse" => "Converse",
            "converse-stream" => "ConverseStream",
            _ => return None,
        }
        .to_string(),
    )
}

/// DynamoDB's `TableName` (and Bedrock's `modelId` in JSON bodies).
fn json_params(service: &str, body: Option<&str>, params: &mut Map<String, Value>) {
    let Some(Ok(Value::Object(doc))) = body.map(serde_json::from_str::<Value>) else {
        return;
    };
    if service == "dynamodb"
        && let Some(Value::String(t)) = doc.get("TableName")
    {
        params.insert("table".into(), Value::from(t.as_str()));
    }
}

/// Action names are lower-case dotted identifiers.
fn action_part(service: &str) -> String {
    service.to_ascii_lowercase().replace('-', "_")
}

/// `ListObjectsV2` -> `list_objects_v2`, `GetBucketACL` -> `get_bucket_acl`:
/// a word starts at an upper-case letter after a lower-case letter or a
/// digit, or at the last capital of an acronym followed by lower case.
pub fn snake_case(operation: &str) -> String {
    let chars: Vec<char> = operation.chars().collect();
    let mut out = String::with_capacity(operation.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn signed(service: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
        );
        h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        h.insert("x-amz-date", HeaderValue::from_static("20240101T000000Z"));
        h
    }

    #[test]
    fn snake_case_follows_aws_operation_names() {
        for (op, want) in [
            ("GetItem", "get_item"),
            ("ListObjectsV2", "list_objects_v2"),
            ("AssumeRole", "assume_role"),
            (
                "InvokeModelWithResponseStream",
                "invoke_model_with_response_stream",
            ),
            ("GetBucketACL", "get_bucket_acl"),
            ("Unknown", "unknown"),
        ] {
            assert_eq!(snake_case(op), want, "{op}");
        }
    }

    #[test]
    fn dynamodb_target_and_table() {
        let mut h = signed("dynamodb");
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.PutItem"),
        );
        let head = RequestHead::new(
            &Method::POST,
            "dynamodb.eu-west-1.amazonaws.com",
            "/",
            None,
            &h,
        );
        let a = aws_action(&head, Some(br#"{"TableName":"orders","Item":{}}"#)).unwrap();
        assert_eq!(a.name, "aws.dynamodb.put_item");
        assert_eq!(a.params["table"], "orders");
        assert_eq!(a.params["region"], "eu-west-1");
        assert_eq!(a.params["operation"], "PutItem");
    }

    #[test]
    fn sts_action_from_the_form_body() {
        let mut h = signed("sts");
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let head = RequestHead::new(&Method::POST, "sts.amazonaws.com", "/", None, &h);
        let a = aws_action(
            &head,
            Some(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&Version=2011-06-15"),
        )
        .unwrap();
        assert_eq!(a.name, "aws.sts.assume_role");
        assert_eq!(a.params["role_arn"], "arn:aws:iam::1:role/x");
        let head = RequestHead::new(
            &Method::GET,
            "sts.amazonaws.com",
            "/",
            Some("Action=GetCallerIdentity&Version=2011-06-15"),
            &h,
        );
        let mut untyped = signed("sts");
        untyped.remove("content-type");
        let post = RequestHead::new(&Method::POST, "sts.amazonaws.com", "/", None, &untyped);
        assert_eq!(
            aws_action(&post, Some(b"Action=AssumeRole&Version=2011-06-15"))
                .unwrap()
                .name,
            "aws.sts.assume_role"
        );
        assert_eq!(
            aws_action(&post, Some(br#"{"Action":"AssumeRole"}"#))
                .unwrap()
                .name,
            "aws.sts.unknown"
        );
        assert_eq!(
            aws_action(&head, None).unwrap().name,
            "aws.sts.get_caller_identity"
        );
    }

    #[test]
    fn bedrock_runtime_paths_name_the_model() {
        let h = signed("bedrock");
        let head = RequestHead::new(
            &Method::POST,
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            None,
            &h,
        );
        let a = aws_action(&head, Some(b"{}")).unwrap();
        assert_eq!(a.name, "aws.bedrock.invoke_model");
        assert_eq!(a.params["model"], "anthropic.claude-3-haiku-20240307-v1:0");
    }

    #[test]
    fn unsigned_requests_are_named_by_host_and_others_are_not_aws() {
        let h = HeaderMap::new();
        let head = RequestHead::new(
            &Method::POST,
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/m/converse",
            None,
            &h,
        );
        assert_eq!(
            aws_action(&head, None).unwrap().name,
            "aws.bedrock.converse"
        );
        let head = RequestHead::new(&Method::GET, "api.github.com", "/", None, &h);
        assert!(aws_action(&head, None).is_none());
    }
}
