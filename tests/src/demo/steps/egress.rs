//! Chapter 2: everything an agent sends goes through Cordon. Allowed API calls work; UDP to
//! anything but DNS, raw sockets and connections to hosts the policy does not name do not,
//! while the same operations from outside the agent do.

use std::process::Command;
use std::time::Duration;

use crate::demo::agent::Curl;
use crate::demo::ctx::{Ctx, first_line};
use crate::demo::world::{PASTE_HOST, UDP_PORT};

const T: Duration = Duration::from_secs(15);

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "2. Forced egress",
        "Agents get no proxy settings and need none: the kernel hands every connection of \
         the agent's cgroup to Cordon. We compare an agent with an ordinary process.",
    );
    allowed_api(c)?;
    unlisted_host(c)?;
    udp(c)?;
    raw_socket(c)
}

fn allowed_api(c: &mut Ctx) -> anyhow::Result<()> {
    let before = c.w.github.count();
    let r = c.agent_curl(
        "researcher",
        &Curl::get("https://api.github.com/repos/acme/app"),
    )?;
    c.n.shows(
        "curl inside the agent trusted Cordon's CA (set up by `cordon run`); Cordon verified \
         the real upstream's certificate, named the request github.repo.read and allowed it.",
    );
    let seen = c.w.github.count() > before;
    c.n.check(
        "researcher reads api.github.com through Cordon",
        r.status == Some(200) && r.field("full_name") == "acme/app" && seen,
        &format!("{}, upstream saw it: {seen}", r.summary()),
    );
    Ok(())
}

fn unlisted_host(c: &mut Ctx) -> anyhow::Result<()> {
    let url = format!("http://{}/upload", c.layout.paste_ip);
    let before = c.w.paste.count();
    let mut direct = Command::new("curl");
    direct.args([
        "-sS",
        "--max-time",
        "10",
        "--noproxy",
        "*",
        "-w",
        "\n",
        &url,
    ]);
    let out = c.run_shown(&mut direct, T)?;
    let reached = c.w.paste.count() > before;
    c.n.shows("an ordinary process (not an agent) reaches paste.test directly.");
    c.n.check(
        "a process outside any agent reaches paste.test",
        out.status.success() && reached,
        "",
    );

    let before = c.w.paste.count();
    let r = c.agent_curl("researcher", &Curl::get(&url).max_time(10))?;
    let leaked = c.w.paste.count() > before;
    c.n.shows(
        "the agent's connection went to Cordon, not to the host: Cordon read it as \
         http.request {host: 203.0.113.x, path: /upload}, which no rule of researcher allows, so \
         its default deny answered. paste.test never saw the request.",
    );
    c.n.check(
        "researcher's direct connect to paste.test is refused",
        r.status != Some(200) && !leaked,
        &format!("{}, upstream saw it: {leaked}", r.summary()),
    );

    let queries = c.w.dns.queries(PASTE_HOST);
    let r = c.agent_curl(
        "researcher",
        &Curl::get(&format!("http://{PASTE_HOST}/upload")).max_time(10),
    )?;
    let asked = c.w.dns.queries(PASTE_HOST) > queries;
    c.n.shows("by name it does not even resolve: dns.query for paste.test is denied by Cordon's resolver, which never forwarded it.");
    c.n.check(
        "researcher cannot resolve paste.test",
        r.status.is_none() && !asked,
        &r.summary(),
    );
    Ok(())
}

fn udp(c: &mut Ctx) -> anyhow::Result<()> {
    let target = format!("{}:{UDP_PORT}", c.layout.paste_ip);
    let probe = c.probe_path();
    let before = c.w.sink.datagrams();
    let out = c.run_shown(Command::new(&probe).args(["probe", "udp", &target]), T)?;
    crate::process::wait_until("the datagram", Duration::from_secs(3), || {
        c.w.sink.datagrams() > before
    })
    .ok();
    c.n.check(
        "a process outside any agent sends UDP to port 9999",
        out.status.success() && c.w.sink.datagrams() > before,
        &first_line(&out),
    );

    let before = c.w.sink.datagrams();
    let out = c.agent("researcher", &[&probe, "probe", "udp", &target])?;
    std::thread::sleep(Duration::from_millis(300));
    let leaked = c.w.sink.datagrams() > before;
    let line = first_line(&out);
    c.n.shows("inside the agent the kernel refuses UDP to any port but 53 (which goes to Cordon's resolver): EPERM before a packet exists.");
    c.n.check(
        "researcher's UDP to port 9999 fails with EPERM",
        !out.status.success() && !leaked && line.contains("not permitted"),
        &line,
    );
    Ok(())
}

fn raw_socket(c: &mut Ctx) -> anyhow::Result<()> {
    let probe = c.probe_path();
    let out = c.run_shown(Command::new(&probe).args(["probe", "raw"]), T)?;
    c.n.check(
        "root outside any agent opens a raw socket",
        out.status.success(),
        &first_line(&out),
    );
    c.n.say("Now the same as an agent. It runs as root on purpose (it has CAP_NET_RAW), so only Cordon can stop it:");
    let mut cmd = c.w.daemon.cordon_command(&[
        "run",
        "--agent",
        "researcher",
        "--user",
        "root",
        "--allow-root",
        "--",
        &probe,
        "probe",
        "raw",
    ]);
    cmd.current_dir("/");
    let out = c.run_shown(&mut cmd, T)?;
    let line = first_line(&out);
    c.n.shows("Cordon's sock_create program allows agents TCP and UDP sockets only: no raw, packet or ICMP sockets, even for root.");
    c.n.check(
        "a root agent cannot open a raw socket",
        !out.status.success() && line.contains("not permitted"),
        &line,
    );
    Ok(())
}
