//! AWS through verify -> re-sign, against moto with IAM authentication
//! enforced (every forwarded request must carry a valid signature from the
//! STS session, whose role decides what is allowed), driven by boto3 and
//! the AWS CLI signing with placeholder keys.

mod common;

use common::moto::{Moto, run_aws_cli, run_python};
use common::proxy::{Outcome, Proxy, Tamper};
use cordon_jit::InstanceId;
use cordon_jit::aws::{AwsPlaceholders, PayloadMode, SigError};
use serde_json::Value;

struct World {
    _moto: Moto,
    proxy: Proxy,
    instance: InstanceId,
    /// The CA of the TLS proxy's certificate, when it serves TLS.
    ca_dir: Option<tempfile::TempDir>,
}

async fn world() -> World {
    world_with(false).await
}

async fn world_with(tls: bool) -> World {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let instance = InstanceId::new("researcher", "i-1");
    let (server, ca_dir) = if tls {
        let ca = cordon_tls::testing::TestCa::new("jit proxy CA").expect("CA");
        let cert = ca.server_cert(&["localhost"]).expect("cert");
        let dir = tempfile::tempdir().expect("tempdir");
        ca.write_pem(dir.path()).expect("CA PEM");
        (
            Some(cert.server_config(&[b"http/1.1"]).expect("config")),
            Some(dir),
        )
    } else {
        (None, None)
    };
    let proxy = Proxy::start(instance.clone(), moto.entry.clone(), moto.addr, server).await;
    proxy
        .state
        .jit
        .aws_placeholders
        .issue(&instance)
        .expect("placeholder");
    World {
        _moto: moto,
        proxy,
        instance,
        ca_dir,
    }
}

impl World {
    fn placeholders(&self) -> &AwsPlaceholders {
        &self.proxy.state.jit.aws_placeholders
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = self
            .placeholders()
            .for_instance(&self.instance)
            .expect("placeholder")
            .env();
        if let Some(dir) = &self.ca_dir {
            let pem = dir.path().join("test-ca.pem");
            env.push(("AWS_CA_BUNDLE".into(), pem.display().to_string()));
        }
        env
    }

    async fn agent(&self, args: &[&str], env: Vec<(String, String)>) -> Value {
        let url = self.proxy.url();
        let args: Vec<String> = std::iter::once(url)
            .chain(args.iter().map(|s| s.to_string()))
            .collect();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_python("agent.py", &args, &env)
        })
        .await
        .expect("agent");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("agent output {out:?}: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_s3_put_list_get_are_resigned_and_moto_accepts_them() {
    let w = world().await;
    let out = w.agent(&["s3"], w.env()).await;
    assert!(out["put"]["ok"].is_string(), "{out}");
    assert_eq!(out["upload"]["ok"], "done", "{out}");
    assert_eq!(
        out["list"]["ok"],
        serde_json::json!(["big.bin", "notes/hello.txt"]),
        "{out}"
    );
    assert_eq!(out["get"]["ok"], "hello from the agent", "{out}");
    assert_eq!(out["get_big"]["ok"], 300000, "{out}");
    // The role (not the placeholder, which AWS never saw) decides: it may
    // not delete, so moto refuses the correctly re-signed request.
    assert_eq!(out["delete"]["error"], "AccessDenied", "{out}");
    let events = w.proxy.events();
    // Over plain HTTP boto3 hashes every payload it sends.
    assert!(
        events
            .iter()
            .filter(|e| e.action.as_deref() == Some("aws.s3.put_object"))
            .all(|e| matches!(e.payload, Some(PayloadMode::Hashed(_)))),
        "{events:?}"
    );
    let actions: Vec<&str> = events.iter().filter_map(|e| e.action.as_deref()).collect();
    for a in [
        "aws.s3.put_object",
        "aws.s3.list_objects_v2",
        "aws.s3.get_object",
        "aws.s3.delete_object",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(
        events
            .iter()
            .all(|e| matches!(e.outcome, Outcome::Forwarded(_))),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_sees_the_assumed_role_session() {
    let w = world().await;
    let out = w.agent(&["who"], w.env()).await;
    let arn = out["arn"]["ok"].as_str().unwrap_or_else(|| panic!("{out}"));
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/agent/cordon-researcher-i-1"),
        "{arn}"
    );
    let events = w.proxy.events();
    assert_eq!(
        events[0].action.as_deref(),
        Some("aws.sts.get_caller_identity")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_json_requests_verify_over_their_body_and_are_resigned() {
    let w = world().await;
    let out = w.agent(&["dynamodb"], w.env()).await;
    assert_eq!(out["create"]["ok"], "orders", "{out}");
    assert_eq!(out["put"]["ok"], "put", "{out}");
    assert_eq!(out["get"]["ok"], "7", "{out}");
    let actions: Vec<String> = w
        .proxy
        .events()
        .into_iter()
        .filter_map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "aws.dynamodb.create_table",
            "aws.dynamodb.put_item",
            "aws.dynamodb.get_item"
        ]
    );
    // One AssumeRole served all three: the session is cached per instance.
    assert_eq!(
        w.proxy
            .state
            .entry_loads
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_copies_and_lists_through_resigning() {
    let w = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.txt");
    std::fs::write(&file, "quarterly numbers").expect("write");
    let url = w.proxy.url();
    let env = w.env();
    let file_arg = file.display().to_string();
    let (ok, _, err) = tokio::task::spawn_blocking({
        let (url, env) = (url.clone(), env.clone());
        move || {
            run_aws_cli(
                &url,
                &["s3", "cp", &file_arg, "s3://docs/cli/report.txt"],
                &env,
            )
        }
    })
    .await
    .expect("aws");
    assert!(ok, "aws s3 cp failed: {err}");
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        run_aws_cli(&url, &["s3", "ls", "s3://docs/cli/"], &env)
    })
    .await
    .expect("aws");
    assert!(ok && out.contains("report.txt"), "{out} {err}");
    let got = w.agent(&["get", "cli/report.txt"], w.env()).await;
    assert_eq!(got["get"]["ok"], "quarterly numbers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_altered_after_signing_is_refused_and_never_forwarded() {
    let w = world().await;
    *w.proxy.state.tamper.lock().expect("tamper") = Some(Tamper::RenameKey);
    let out = w.agent(&["get", "anything.txt"], w.env()).await;
    assert_eq!(out["get"]["error"], "CordonRefused", "{out}");
    let events = w.proxy.events();
    assert!(
        matches!(
            events[0].outcome,
            Outcome::Refused(SigError::SignatureMismatch)
        ),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_body_is_cut_off_and_the_object_never_stored() {
    let w = world().await;
    *w.proxy.state.tamper.lock().expect("tamper") = Some(Tamper::FlipBodyByte);
    let out = w
        .agent(&["put", "notes/hello.txt", "pay 10 USD"], w.env())
        .await;
    assert!(out["put"]["error"].is_string(), "{out}");
    let events = w.proxy.events();
    assert!(
        matches!(
            events[0].outcome,
            Outcome::BodyRefused(SigError::PayloadHashMismatch)
        ),
        "{events:?}"
    );
    *w.proxy.state.tamper.lock().expect("tamper") = None;
    let got = w.agent(&["get", "notes/hello.txt"], w.env()).await;
    assert_eq!(got["get"]["error"], "NoSuchKey", "{got}");
    // Untampered, the same upload goes through.
    let out = w
        .agent(&["put", "notes/hello.txt", "pay 10 USD"], w.env())
        .await;
    assert!(out["put"]["ok"].is_string(), "{out}");
    let got = w.agent(&["get", "notes/hello.txt"], w.env()).await;
    assert_eq!(got["get"]["ok"], "pay 10 USD", "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_placeholder_and_a_real_key_are_foreign() {
    let w = world().await;
    let other = InstanceId::new("researcher", "i-2");
    let theirs = w.placeholders().issue(&other).expect("placeholder");
    let out = w.agent(&["get", "k"], theirs.env()).await;
    assert_eq!(out["get"]["error"], "CordonRefused", "{out}");
    let mut real = w.env();
    real[0].1 = "AKIAIOSFODNN7EXAMPLE".into();
    let out = w.agent(&["get", "k"], real).await;
    assert_eq!(out["get"]["error"], "CordonRefused", "{out}");
    let events = w.proxy.events();
    assert_eq!(
        events[0].outcome_error(),
        Some(&SigError::ForeignPlaceholder {
            access_key_id: theirs.access_key_id.clone()
        })
    );
    assert_eq!(
        w.placeholders().owner_of(&theirs.access_key_id),
        Some(other)
    );
    assert_eq!(
        events[1].outcome_error(),
        Some(&SigError::ForeignCredential {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_dies_with_its_instance() {
    let w = world().await;
    let old = w.env();
    let out = w.agent(&["who"], old.clone()).await;
    assert!(out["arn"]["ok"].is_string(), "{out}");
    let ended = w.proxy.state.jit.revoke_instance(&w.instance).await;
    assert_eq!(ended.aws_sessions_dropped, 1);
    assert_eq!(ended.github.revoked, 0);
    // The same instance name starts again: it gets a new placeholder, and
    // the dead one is foreign to it.
    w.placeholders().issue(&w.instance).expect("placeholder");
    let out = w.agent(&["get", "k"], old.clone()).await;
    assert_eq!(out["get"]["error"], "CordonRefused", "{out}");
    let events = w.proxy.events();
    assert_eq!(
        events.last().and_then(|e| e.outcome_error()),
        Some(&SigError::ForeignPlaceholder {
            access_key_id: old[0].1.clone()
        })
    );
    let out = w.agent(&["who"], w.env()).await;
    assert!(out["arn"]["ok"].is_string(), "{out}");
}

/// What boto3 does against real AWS, over TLS (Cordon has terminated the
/// agent's TLS): S3 uploads go UNSIGNED-PAYLOAD, streams as aws-chunked
/// with an unsigned checksum trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_over_tls_with_unsigned_and_trailer_payloads_is_resigned() {
    let w = world_with(true).await;
    let out = w.agent(&["s3"], w.env()).await;
    assert!(out["put"]["ok"].is_string(), "{out}");
    assert_eq!(out["upload"]["ok"], "done", "{out}");
    assert_eq!(out["get"]["ok"], "hello from the agent", "{out}");
    assert_eq!(out["get_big"]["ok"], 300000, "{out}");
    assert_eq!(out["delete"]["error"], "AccessDenied", "{out}");
    let puts: Vec<PayloadMode> = w
        .proxy
        .events()
        .into_iter()
        .filter(|e| e.action.as_deref() == Some("aws.s3.put_object"))
        .filter_map(|e| e.payload)
        .collect();
    assert!(
        puts.iter().any(|p| matches!(
            p,
            PayloadMode::Unsigned | PayloadMode::StreamingUnsignedTrailer
        )),
        "{puts:?}"
    );
}

/// What the streaming agent uploads (printable, so `get` can return it).
fn streaming_data(size: usize) -> String {
    (0..size)
        .map(|i| (b'a' + ((i * 7) % 26) as u8) as char)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_streaming_upload_is_checked_chunk_by_chunk_and_resigned() {
    let w = world().await;
    let url = w.proxy.url();
    let env = w.env();
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            "streaming.py",
            &[&url, "stream.txt", "200000", "65536"],
            &env,
        )
    })
    .await
    .expect("streaming");
    assert!(out.starts_with("200"), "{out}");
    let got = w.agent(&["get", "stream.txt"], w.env()).await;
    assert_eq!(
        got["get"]["ok"].as_str(),
        Some(streaming_data(200000).as_str())
    );
    let events = w.proxy.events();
    assert_eq!(events[0].action.as_deref(), Some("aws.s3.put_object"));
    assert!(matches!(events[0].outcome, Outcome::Forwarded(s) if s.is_success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_chunk_is_refused_and_the_object_never_stored() {
    let w = world().await;
    let url = w.proxy.url();
    let mut env = w.env();
    env.push(("TAMPER_CHUNK".into(), "1".into()));
    let out = tokio::task::spawn_blocking(move || {
        run_python("streaming.py", &[&url, "bad.txt", "100000", "65536"], &env)
    })
    .await
    .expect("streaming");
    assert!(out.starts_with("403"), "{out}");
    let events = w.proxy.events();
    assert_eq!(
        events[0].outcome_error(),
        Some(&SigError::ChunkSignatureMismatch { index: 0 })
    );
    let got = w.agent(&["get", "bad.txt"], w.env()).await;
    assert_eq!(got["get"]["error"], "NoSuchKey", "{got}");
}

trait OutcomeError {
    fn outcome_error(&self) -> Option<&SigError>;
}

impl OutcomeError for common::proxy::Event {
    fn outcome_error(&self) -> Option<&SigError> {
        match &self.outcome {
            Outcome::Refused(e) | Outcome::BodyRefused(e) => Some(e),
            Outcome::Forwarded(_) => None,
        }
    }
}
