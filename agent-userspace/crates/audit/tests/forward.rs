//! The syslog forwarder against an in-process collector on a real socket: records arrive in
//! order as octet-counted RFC 5424 messages whose body is the export line; a collector that
//! drops the connection loses nothing (at least once, duplicates only from the last window);
//! a restarted forwarder resumes after its cursor; TLS verifies the collector.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{action_record, open_db, open_log, temp_db};
use cordon_audit::forward::{CursorFile, Facility, ForwardConfig, Forwarder, Header, TlsSettings};
use cordon_audit::{AuditConfig, AuditLog, Decision, ExportFormat, export};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;

/// Reads one octet-counted frame: `LEN SP MSG`. `None` at a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut len = 0usize;
    let mut digits = 0;
    loop {
        let b = r.read_u8().await.ok()?;
        match b {
            b'0'..=b'9' => {
                len = len * 10 + usize::from(b - b'0');
                digits += 1;
            }
            b' ' if digits > 0 => break,
            other => panic!("not octet-counted framing: byte {other:#x}"),
        }
    }
    let mut msg = vec![0; len];
    r.read_exact(&mut msg).await.ok()?;
    Some(msg)
}

/// The MSG part of an RFC 5424 message with our structured data.
fn body(msg: &[u8]) -> String {
    let text = String::from_utf8(msg.to_vec()).unwrap();
    let at = text.find("] ").expect("structured data") + 2;
    text[at..].to_string()
}

/// A collector: accepts connections one after another and keeps every message body.
/// `drop_after`: close each of the first connections after this many messages (with the rest
/// of what was sent unread, as a collector that stops does).
struct Collector {
    addr: String,
    got: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<u32>>,
}

impl Collector {
    async fn start(drop_after: Option<(usize, u32)>) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (g, c) = (Arc::clone(&got), Arc::clone(&connections));
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let n = {
                    let mut c = c.lock().unwrap();
                    *c += 1;
                    *c
                };
                let limit = drop_after.filter(|(_, times)| n <= *times).map(|(k, _)| k);
                let mut seen = 0;
                while let Some(msg) = read_frame(&mut s).await {
                    g.lock().unwrap().push(body(&msg));
                    seen += 1;
                    if limit == Some(seen) {
                        break;
                    }
                }
            }
        });
        Collector {
            addr,
            got,
            connections,
        }
    }

    fn got(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

fn config(addr: &str, cursor: &std::path::Path) -> ForwardConfig {
    ForwardConfig {
        address: addr.into(),
        tls: None,
        server_name: "localhost".into(),
        format: ExportFormat::Jsonl,
        header: Header::new(Facility::AUDIT, "test-host", "cordon", "1"),
        cursor_file: cursor.into(),
        ack_grace: Duration::from_millis(100),
        batch: 16,
    }
}

async fn append(log: &AuditLog, from: u64, n: u64) {
    for i in from..from + n {
        log.append(&action_record("bot", i, Decision::Allow))
            .await
            .unwrap();
    }
}

fn exported(log: &AuditLog) -> Vec<String> {
    let mut out = Vec::new();
    export(log.database(), None, None, ExportFormat::Jsonl, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What arrived with replays folded: each line must continue the export in order, or repeat
/// one already received (a resend after a reconnect).
fn in_order_at_least_once(got: &[String], want: &[String]) -> Vec<String> {
    let mut folded: Vec<String> = Vec::new();
    for line in got {
        if folded.contains(line) {
            continue;
        }
        folded.push(line.clone());
    }
    assert_eq!(folded.len(), want.len().min(folded.len()));
    assert_eq!(&folded[..], &want[..folded.len()], "in export order");
    folded
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_record_arrives_in_order_as_its_export_line() {
    let t = temp_db();
    let log = open_log(&open_db(&t.path), AuditConfig::default());
    append(&log, 0, 40).await;
    let collector = Collector::start(None).await;
    let cursor = t.dir.path().join("audit-forward.cursor");
    let fwd = Forwarder::start(log.clone(), config(&collector.addr, &cursor)).unwrap();
    append(&log, 40, 10).await;
    let want = exported(&log);
    wait_for("50 records", || collector.got().len() >= 50).await;
    assert_eq!(collector.got(), want, "exactly the export, in order, once");
    let stats = fwd.stats();
    wait_for("the cursor", || {
        CursorFile::new(&cursor).load().unwrap() == Some(50)
    })
    .await;
    let s = stats.snapshot();
    assert!(s.connected);
    assert_eq!(
        (s.sent_seq, s.delivered_seq, s.records_sent_total),
        (50, 50, 50)
    );
    assert_eq!(s.lag(50), 0);
}

#[tokio::test]
async fn a_collector_that_drops_the_connection_loses_nothing() {
    let t = temp_db();
    let log = open_log(&open_db(&t.path), AuditConfig::default());
    append(&log, 0, 200).await;
    // The first two connections end after 30 messages each, the rest sent to them unread.
    let collector = Collector::start(Some((30, 2))).await;
    let cursor = t.dir.path().join("audit-forward.cursor");
    let fwd = Forwarder::start(log.clone(), config(&collector.addr, &cursor)).unwrap();
    let want = exported(&log);
    wait_for("every record", || {
        let got = collector.got();
        want.iter().all(|w| got.contains(w))
    })
    .await;
    let got = collector.got();
    let folded = in_order_at_least_once(&got, &want);
    assert_eq!(folded, want);
    assert_eq!(*collector.connections.lock().unwrap(), 3);
    assert!(fwd.stats().snapshot().reconnects_total >= 2);
    // Only what was unconfirmed when a connection failed is sent twice.
    assert!(
        got.len() < want.len() + 2 * 40,
        "{} lines for {}",
        got.len(),
        want.len()
    );
}

#[tokio::test]
async fn a_restarted_forwarder_resumes_after_its_cursor() {
    let t = temp_db();
    let log = open_log(&open_db(&t.path), AuditConfig::default());
    append(&log, 0, 20).await;
    let cursor = t.dir.path().join("audit-forward.cursor");
    let first = Collector::start(None).await;
    let fwd = Forwarder::start(log.clone(), config(&first.addr, &cursor)).unwrap();
    wait_for("the cursor", || {
        CursorFile::new(&cursor).load().unwrap() == Some(20)
    })
    .await;
    drop(fwd);
    append(&log, 20, 5).await;
    let second = Collector::start(None).await;
    let _fwd = Forwarder::start(log.clone(), config(&second.addr, &cursor)).unwrap();
    let want = exported(&log);
    wait_for("5 records", || second.got().len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(second.got(), want[20..], "only what came after the cursor");
}

#[tokio::test]
async fn tls_forwarding_verifies_the_collector() {
    let t = temp_db();
    let log = open_log(&open_db(&t.path), AuditConfig::default());
    append(&log, 0, 5).await;
    let ca = cordon_tls::testing::TestCa::new("collector test CA").unwrap();
    let server = ca.server_cert(&["collector.test"]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server.server_config(&[]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(s).await else {
                continue;
            };
            while let Some(msg) = read_frame(&mut tls).await {
                g.lock().unwrap().push(body(&msg));
            }
        }
    });
    let ca_file = ca.write_pem(t.dir.path()).unwrap();

    // A wrong server name is refused: nothing is sent to an unverified collector.
    let mut wrong = config(&addr, &t.dir.path().join("wrong.cursor"));
    wrong.tls = Some(TlsSettings::new(Some(&ca_file)).unwrap());
    wrong.server_name = "other.test".into();
    let refused = Forwarder::start(log.clone(), wrong).unwrap();
    wait_for("a refused handshake", || {
        refused.stats().snapshot().last_error.is_some()
    })
    .await;
    assert!(got.lock().unwrap().is_empty());
    drop(refused);

    let mut cfg = config(&addr, &t.dir.path().join("audit-forward.cursor"));
    cfg.tls = Some(TlsSettings::new(Some(&ca_file)).unwrap());
    cfg.server_name = "collector.test".into();
    let _fwd = Forwarder::start(log.clone(), cfg).unwrap();
    wait_for("5 records over TLS", || got.lock().unwrap().len() >= 5).await;
    assert_eq!(*got.lock().unwrap(), exported(&log));
}

#[tokio::test]
async fn a_cursor_past_the_end_of_the_trail_forwards_it_from_the_start() {
    let t = temp_db();
    let log = open_log(&open_db(&t.path), AuditConfig::default());
    append(&log, 0, 3).await;
    let cursor = t.dir.path().join("audit-forward.cursor");
    CursorFile::new(&cursor)
        .store(500, "elsewhere:514")
        .unwrap();
    let collector = Collector::start(None).await;
    let _fwd = Forwarder::start(log.clone(), config(&collector.addr, &cursor)).unwrap();
    wait_for("3 records", || collector.got().len() >= 3).await;
    assert_eq!(collector.got(), exported(&log));
}
