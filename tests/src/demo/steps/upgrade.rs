//! Chapter 17: upgrading the daemon while agents run. `cordon upgrade` has
//! the daemon replace itself with the binary at its path, keeping its pid,
//! its agent-facing sockets and its pinned programs, as the package's
//! postinst does on every upgrade; the agents' requests go on being decided.

use crate::demo::agent::Curl;
use crate::demo::ctx::Ctx;

/// `pid` and `serving_since_ms` from `cordon status`.
fn image(c: &Ctx) -> anyhow::Result<(u64, u64)> {
    let out = c.w.daemon.cordon(&["status"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok((
        v["pid"].as_u64().unwrap_or(0),
        v["serving_since_ms"].as_u64().unwrap_or(0),
    ))
}

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "17. Upgrade in place",
        "Installing a new Cordon must not open a gap. `cordon upgrade` (run by the package on \
         every upgrade) has the daemon drain, keep the names its agents resolved, and exec the \
         binary installed at its path with its proxy and resolver sockets still open; the \
         pinned programs enforce throughout.",
    );
    let (pid, since) = image(c)?;
    let out = c.cordon(&["upgrade"])?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let (pid_after, since_after) = image(c)?;
    c.n.shows("the same process now runs a new image of the binary: its pid stayed, its serving time is new.");
    c.n.check(
        "`cordon upgrade` returns once the new image serves, under the same pid",
        out.status.success()
            && said.contains(&format!("pid {pid} now runs cordon"))
            && pid_after == pid
            && since_after > since,
        &format!("pid {pid} -> {pid_after}, serving since {since} -> {since_after}"),
    );
    let r = c.agent_curl(
        "deployer",
        &Curl::new("POST", "https://api.github.com/repos/acme/app/issues")
            .json(r#"{"title": "Filed after the upgrade"}"#),
    )?;
    c.n.check(
        "an agent's request right after is decided and forwarded by the new image",
        r.status == Some(200) || r.status == Some(201),
        &format!("status {:?}", r.status),
    );
    Ok(())
}
