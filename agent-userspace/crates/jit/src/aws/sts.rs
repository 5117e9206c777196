//! STS AssumeRole: the `aws-role` entry's base credentials buy a session of
//! 15 to 60 minutes, optionally narrowed by a session policy.

use std::time::SystemTime;

use bytes::Bytes;
use cordon_vault::AwsRoleEntry;
use http::{Method, Request, Uri};
use http_body_util::Full;
use quick_xml::events::Event;

use super::canonical::{self, ALGORITHM, CanonicalParts, CredentialScope};
use super::credentials::SessionCredentials;
use super::encode::{canonical_uri, encode_component};
use super::verify::amz_date;
use crate::https::{HttpClient, HttpError};

const DEFAULT_REGION: &str = "us-east-1";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("{0} is not a usable STS endpoint URL")]
    Endpoint(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("STS refused AssumeRole ({status}): {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("STS answered with unreadable XML: {0}")]
    Xml(String),
    #[error("STS's answer has no {0}")]
    Missing(&'static str),
    /// The `aws-role` entry could not be read from the vault.
    #[error(transparent)]
    Vault(#[from] cordon_vault::VaultError),
    /// The connector is cut for the agent, or the session was withdrawn
    /// while this request waited for it: no role was assumed.
    #[error(transparent)]
    Withdrawn(#[from] crate::cache::Withdrawn),
}

/// Calls STS at one endpoint (`https://sts.amazonaws.com`, a regional or
/// VPC endpoint, or a local test server).
#[derive(Debug, Clone)]
pub struct StsClient {
    http: HttpClient,
    endpoint: Uri,
}

impl StsClient {
    pub fn new(http: HttpClient, endpoint: &str) -> Result<StsClient, StsError> {
        let endpoint: Uri = endpoint
            .parse()
            .map_err(|_| StsError::Endpoint(endpoint.to_string()))?;
        if endpoint.host().is_none() {
            return Err(StsError::Endpoint(endpoint.to_string()));
        }
        Ok(StsClient { http, endpoint })
    }

    /// Assumes `entry`'s role for `session_name` (shown in CloudTrail).
    pub async fn assume_role(
        &self,
        entry: &AwsRoleEntry,
        session_name: &str,
        now: SystemTime,
    ) -> Result<SessionCredentials, StsError> {
        let mut form = vec![
            ("Action", "AssumeRole".to_string()),
            ("Version", "2011-06-15".to_string()),
            ("RoleArn", entry.role_arn.clone()),
            ("RoleSessionName", session_name.to_string()),
            ("DurationSeconds", entry.session_duration_secs.to_string()),
        ];
        if let Some(policy) = &entry.session_policy {
            form.push(("Policy", policy.clone()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&");
        let region = entry.sts_region.as_deref().unwrap_or(DEFAULT_REGION);
        let req = self.signed(entry, region, body, now)?;
        let res = self.http.send(req).await?;
        let fields = read_xml(&res.body)?;
        if !res.status.is_success() {
            return Err(StsError::Refused {
                status: res.status.as_u16(),
                code: fields.code.unwrap_or_default(),
                message: fields.message.unwrap_or_default(),
            });
        }
        let expires = fields.expiration.ok_or(StsError::Missing("Expiration"))?;
        let expires_at = chrono::DateTime::parse_from_rfc3339(&expires)
            .map_err(|_| StsError::Xml(format!("Expiration {expires:?} is not a timestamp")))?;
        Ok(SessionCredentials::new(
            fields
                .access_key_id
                .ok_or(StsError::Missing("AccessKeyId"))?,
            fields
                .secret_access_key
                .ok_or(StsError::Missing("SecretAccessKey"))?,
            Some(
                fields
                    .session_token
                    .ok_or(StsError::Missing("SessionToken"))?,
            ),
            SystemTime::from(expires_at.with_timezone(&chrono::Utc)),
        ))
    }

    fn signed(
        &self,
        entry: &AwsRoleEntry,
        region: &str,
        body: String,
        now: SystemTime,
    ) -> Result<Request<Full<Bytes>>, StsError> {
        let date = amz_date(now);
        let scope = CredentialScope {
            date: date[..8].to_string(),
            region: region.to_string(),
            service: "sts".to_string(),
        };
        let host = self
            .endpoint
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| StsError::Endpoint(self.endpoint.to_string()))?;
        let headers = vec![
            ("content-type".to_string(), FORM.to_string()),
            ("host".to_string(), host.clone()),
            ("x-amz-date".to_string(), date.clone()),
        ];
        let payload = canonical::sha256_hex(body.as_bytes());
        let path = self.endpoint.path();
        let uri = canonical_uri("sts", path);
        let parts = CanonicalParts {
            method: "POST",
            uri: &uri,
            query: "",
            headers: &headers,
            payload_hash: &payload,
        };
        let key = canonical::signing_key(&entry.secret_access_key, &scope);
        let signature = canonical::sign(
            &key,
            &canonical::string_to_sign(&date, &scope, &parts.render()),
        );
        let auth = format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
            entry.access_key_id,
            scope.to_scope_string(),
            parts.signed_headers()
        );
        Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header("content-type", FORM)
            .header("host", host)
            .header("x-amz-date", date)
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| StsError::Endpoint(self.endpoint.to_string()))
    }
}

#[derive(Default)]
struct Fields {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expiration: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// Picks the few elements that matter out of an AssumeRole answer or an
/// STS error document.
fn read_xml(body: &[u8]) -> Result<Fields, StsError> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut fields = Fields::default();
    let mut current = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => current = e.local_name().as_ref().to_string(),
            Ok(Event::End(_)) => current.clear(),
            Ok(Event::Text(t)) => {
                let text = t.xml10_content().trim().to_string();
                let slot = match current.as_str() {
                    "AccessKeyId" => &mut fields.access_key_id,
                    "SecretAccessKey" => &mut fields.secret_access_key,
                    "SessionToken" => &mut fields.session_token,
                    "Expiration" => &mut fields.expiration,
                    "Code" => &mut fields.code,
                    "Message" => &mut fields.message,
                    _ => {
                        buf.clear();
                        continue;
                    }
                };
                if !text.is_empty() {
                    *slot = Some(text);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(StsError::Xml(e.to_string())),
        }
        buf.clear();
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials_from_an_assume_role_answer() {
        let xml = br#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>s3cr3t</SecretAccessKey>
      <SessionToken>tok</SessionToken>
      <Expiration>2024-01-01T12:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>
  </AssumeRoleResult>
</AssumeRoleResponse>"#;
        let f = read_xml(xml).unwrap();
        assert_eq!(f.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(f.session_token.as_deref(), Some("tok"));
        assert_eq!(f.expiration.as_deref(), Some("2024-01-01T12:00:00Z"));
    }

    #[test]
    fn reads_code_and_message_from_an_error() {
        let xml = br#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>"#;
        let f = read_xml(xml).unwrap();
        assert_eq!(f.code.as_deref(), Some("AccessDenied"));
        assert_eq!(f.message.as_deref(), Some("not allowed"));
        assert!(read_xml(b"<a><b></a>").is_err());
    }
}
