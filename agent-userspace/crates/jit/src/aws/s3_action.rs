//! S3's REST form: the operation follows from the method, whether the path
//! names a bucket and a key, and the sub-resource in the query (`?acl`,
//! `?tagging`, `?uploads`, ...). Buckets come from a virtual host
//! (`bucket.s3.region.amazonaws.com`) or the first path segment.

use serde_json::{Map, Value};

use super::encode::{decode, query_pairs};
use super::head::RequestHead;

/// Sub-resources whose operation is `<Verb>Bucket<Name>` /
/// `<Verb>Object<Name>`, with the name AWS uses.
const SUBRESOURCES: [(&str, &str); 16] = [
    ("acl", "Acl"),
    ("policy", "Policy"),
    ("tagging", "Tagging"),
    ("versioning", "Versioning"),
    ("lifecycle", "LifecycleConfiguration"),
    ("cors", "Cors"),
    ("encryption", "Encryption"),
    ("website", "Website"),
    ("logging", "Logging"),
    ("notification", "NotificationConfiguration"),
    ("replication", "Replication"),
    ("object-lock", "ObjectLockConfiguration"),
    ("retention", "Retention"),
    ("legal-hold", "LegalHold"),
    ("ownershipControls", "OwnershipControls"),
    ("publicAccessBlock", "PublicAccessBlock"),
];

/// The operation (AWS spelling), adding `bucket`, `key` and `copy_source`
/// to `params`.
pub(crate) fn name(head: &RequestHead<'_>, host: &str, params: &mut Map<String, Value>) -> String {
    let (bucket, key) = bucket_and_key(host, head.path);
    if let Some(b) = &bucket {
        params.insert("bucket".into(), Value::from(b.as_str()));
    }
    if let Some(k) = &key {
        params.insert("key".into(), Value::from(k.as_str()));
    }
    if let Some(src) = head
        .headers
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok())
    {
        params.insert("copy_source".into(), Value::from(decode(src)));
    }
    let query = query_pairs(head.query);
    let has = |name: &str| query.iter().any(|(n, _)| n == name);
    let method = head.method.as_str();
    let Some(_) = bucket else {
        return if method == "GET" {
            "ListBuckets"
        } else {
            "Unknown"
        }
        .into();
    };
    let verb = match method {
        "GET" => "Get",
        "PUT" => "Put",
        "DELETE" => "Delete",
        _ => "",
    };
    let on = if key.is_some() { "Object" } else { "Bucket" };
    if !verb.is_empty()
        && let Some((_, name)) = SUBRESOURCES.iter().find(|(q, _)| has(q))
    {
        return format!("{verb}{on}{name}");
    }
    let op = match (method, key.is_some()) {
        ("GET", false) if has("list-type") => "ListObjectsV2",
        ("GET", false) if has("versions") => "ListObjectVersions",
        ("GET", false) if has("uploads") => "ListMultipartUploads",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) => "ListObjects",
        ("PUT", false) => "CreateBucket",
        ("DELETE", false) => "DeleteBucket",
        ("HEAD", false) => "HeadBucket",
        ("POST", false) if has("delete") => "DeleteObjects",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) => "GetObject",
        ("PUT", true) if has("uploadId") && has("partNumber") => {
            if params.contains_key("copy_source") {
                "UploadPartCopy"
            } else {
                "UploadPart"
            }
        }
        ("PUT", true) if params.contains_key("copy_source") => "CopyObject",
        ("PUT", true) => "PutObject",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        ("HEAD", true) => "HeadObject",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", true) if has("restore") => "RestoreObject",
        _ => "Unknown",
    };
    op.into()
}

/// Virtual-hosted (`b.s3.amazonaws.com`, `b.s3.eu-west-1.amazonaws.com`,
/// `b.s3-eu-west-1.amazonaws.com`) or path-style (`/b/key`).
fn bucket_and_key(host: &str, path: &str) -> (Option<String>, Option<String>) {
    let virtual_bucket = host.strip_suffix(".amazonaws.com").and_then(|rest| {
        let at = rest
            .find(".s3.")
            .or_else(|| rest.find(".s3-"))
            .or_else(|| rest.strip_suffix(".s3").map(str::len))?;
        Some(rest[..at].to_string()).filter(|b| !b.is_empty())
    });
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let non_empty = |s: &str| (!s.is_empty()).then(|| decode(s));
    match virtual_bucket {
        Some(b) => (Some(b), non_empty(trimmed)),
        None => {
            let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
            (non_empty(bucket), non_empty(key))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn op(
        method: Method,
        host: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> (String, Map<String, Value>) {
        let head = RequestHead::new(&method, host, path, query, headers);
        let mut params = Map::new();
        let name = name(&head, host, &mut params);
        (name, params)
    }

    #[test]
    fn object_and_bucket_operations() {
        let h = HeaderMap::new();
        let (n, p) = op(Method::GET, "localhost:5000", "/docs/a/b%20c.txt", None, &h);
        assert_eq!(n, "GetObject");
        assert_eq!(
            (p["bucket"].as_str(), p["key"].as_str()),
            (Some("docs"), Some("a/b c.txt"))
        );
        assert_eq!(
            op(
                Method::GET,
                "localhost",
                "/docs",
                Some("list-type=2&prefix="),
                &h
            )
            .0,
            "ListObjectsV2"
        );
        assert_eq!(op(Method::GET, "localhost", "/", None, &h).0, "ListBuckets");
        assert_eq!(
            op(Method::DELETE, "localhost", "/docs/k", None, &h).0,
            "DeleteObject"
        );
        assert_eq!(
            op(Method::PUT, "localhost", "/docs/k", None, &h).0,
            "PutObject"
        );
        assert_eq!(
            op(Method::PUT, "localhost", "/docs", None, &h).0,
            "CreateBucket"
        );
        assert_eq!(
            op(Method::POST, "localhost", "/docs", Some("delete"), &h).0,
            "DeleteObjects"
        );
        assert_eq!(
            op(Method::PUT, "localhost", "/docs/k", Some("tagging"), &h).0,
            "PutObjectTagging"
        );
        assert_eq!(
            op(Method::GET, "localhost", "/docs", Some("policy"), &h).0,
            "GetBucketPolicy"
        );
        assert_eq!(
            op(Method::POST, "localhost", "/docs/k", Some("uploads"), &h).0,
            "CreateMultipartUpload"
        );
        assert_eq!(
            op(
                Method::PUT,
                "localhost",
                "/docs/k",
                Some("partNumber=1&uploadId=x"),
                &h
            )
            .0,
            "UploadPart"
        );
    }

    #[test]
    fn virtual_hosted_buckets_and_copies() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-copy-source", HeaderValue::from_static("/src/a%2Fb"));
        let (n, p) = op(
            Method::PUT,
            "docs.s3.eu-west-1.amazonaws.com",
            "/k",
            None,
            &h,
        );
        assert_eq!(n, "CopyObject");
        assert_eq!(p["bucket"], "docs");
        assert_eq!(p["copy_source"], "/src/a/b");
        let h = HeaderMap::new();
        let (n, p) = op(
            Method::GET,
            "docs.s3.amazonaws.com",
            "/",
            Some("list-type=2"),
            &h,
        );
        assert_eq!(n, "ListObjectsV2");
        assert_eq!(p["bucket"], "docs");
        assert!(!p.contains_key("key"));
    }
}
