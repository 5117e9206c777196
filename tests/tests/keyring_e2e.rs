//! An agent cannot read its operator's kernel keys. `cordon run` inherits
//! the session keyring of whoever started it, and possessing a keyring is
//! what key permissions mostly test: without Cordon's refusal, an agent
//! dropped to `nobody`, or root in its own user namespace, reads every key
//! its operator kept there. The operator here keeps a marker in a fresh
//! session keyring; each agent looks for it and prints what it read.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use cordon_e2e::host::{HostUser, agent_as, outcomes};
use cordon_e2e::secrets::random_alnum;
use cordon_e2e::world::{PYTHON, show, start_daemon};
use cordon_e2e::{TestDns, cordon_bin, require_root_or_skip, run_with_timeout};
use serde_json::json;

const POLICY: &str = r#"
agents = ["*"]
default = "deny"
"#;

/// Finds the key by description in its session keyring and reads it.
const READER: &str = r#"
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_keyctl, KEYCTL_SEARCH, KEYCTL_READ, SESSION = 250, 10, 11, -3
res = {}
key = libc.syscall(SYS_keyctl, KEYCTL_SEARCH, ctypes.c_int(SESSION), b"user", sys.argv[1].encode(), 0)
if key < 0:
    res["read"] = {"ok": False, "errno": ctypes.get_errno()}
else:
    buf = ctypes.create_string_buffer(4096)
    n = libc.syscall(SYS_keyctl, KEYCTL_READ, key, buf, 4096)
    res["read"] = {"ok": n >= 0, "out": buf.raw[:max(n, 0)].decode(errors="replace"), "errno": ctypes.get_errno()}
print(json.dumps(res))
"#;

/// In the launcher, before exec: a new session keyring holding `secret`
/// under `name`, as an operator's login session holds its keys.
fn with_operator_key(cmd: &mut Command, name: &str, secret: &str) {
    let name = std::ffi::CString::new(name).unwrap();
    let kind = c"user";
    let secret = secret.as_bytes().to_vec();
    // SAFETY: keyctl and add_key are plain system calls on buffers this
    // closure owns; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
            if libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0) < 0
                || libc::syscall(
                    libc::SYS_add_key,
                    kind.as_ptr(),
                    name.as_ptr(),
                    secret.as_ptr(),
                    secret.len(),
                    libc::KEY_SPEC_SESSION_KEYRING,
                ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn reads_nothing(mut cmd: Command, name: &str, secret: &str, who: &str) {
    with_operator_key(&mut cmd, name, secret);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{who}: {}", show(&out));
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !everything.contains(secret),
        "{who} read its operator's key: {everything}"
    );
    let res = outcomes(&out);
    assert_eq!(
        res["read"],
        json!({"ok": false, "errno": libc::EPERM}),
        "{who}: {res}"
    );
}

#[test]
fn an_agent_cannot_read_a_key_from_its_operators_session_keyring() {
    require_root_or_skip!();
    let dns = TestDns::start().unwrap();
    let (_policies, daemon) = start_daemon(&dns, None, POLICY).unwrap();
    let name = format!("cordon-e2e-{}", random_alnum(8));
    let secret = format!("MARKER-{}", random_alnum(24));

    let nobody = HostUser::nobody();
    let work = nobody.workdir().unwrap();
    let cmd = agent_as(
        &daemon,
        &nobody,
        "keyreader",
        work.path(),
        &[PYTHON, "-c", READER, &name],
    );
    reads_nothing(cmd, &name, &secret, "an agent running as nobody");

    let root_work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(cordon_bin());
    cmd.args(["run", "--agent", "keyreader", "--state-dir"])
        .arg(daemon.state_dir())
        .args(["--allow-root", "--", PYTHON, "-c", READER, &name])
        .current_dir(root_work.path())
        .env_remove("SUDO_UID");
    reads_nothing(cmd, &name, &secret, "a root agent");
}
