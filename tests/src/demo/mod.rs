//! `cordon-demo`: a narrated walk-through of Cordon on a local fake internet, driven through
//! the real daemon, the real eBPF programs and real TLS. `cargo xtask demo` runs it as root.
//!
//! Each chapter runs real commands, shows them before their output, says what they show and
//! marks each claim PASS or FAIL; features the `cordon` binary does not have yet are SKIPped
//! with a note. The process exits non-zero when any check failed.

pub mod agent;
pub mod ctx;
pub mod narrate;
pub mod policy;
pub mod probe;
mod steps;
pub mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ctx::{Ctx, Features};
use narrate::Narrator;
use probe::ProbeBin;
use world::World;

/// Command line of the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub cordon: PathBuf,
    pub workspace: PathBuf,
}

pub const USAGE: &str = "usage: cordon-demo --cordon PATH/TO/cordon --workspace REPO_ROOT";

impl Args {
    pub fn parse(argv: &[String]) -> Result<Args, String> {
        let (mut cordon, mut workspace) = (None, None);
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let slot = match a.as_str() {
                "--cordon" => &mut cordon,
                "--workspace" => &mut workspace,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            };
            let value = it
                .next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))?;
            *slot = Some(PathBuf::from(value));
        }
        Ok(Args {
            cordon: cordon.ok_or_else(|| format!("--cordon is required\n{USAGE}"))?,
            workspace: workspace.unwrap_or_else(crate::workspace_root),
        })
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C or SIGTERM end the walk-through after the current command instead of killing the
/// process, so everything built so far is torn down by its guards.
fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Run the whole walk-through; the exit code says whether every check held.
pub fn run(args: &Args) -> ExitCode {
    catch_interrupts();
    let started = Instant::now();
    let mut n = Narrator::new();
    n.banner(
        "Cordon demo: forced egress, actions, approvals, limits, kill switch, audit, vault, host containment, root agents, MCP, git push, just-in-time credentials, learn mode",
        &[
            "Everything below runs for real on this machine: the cordon daemon, its eBPF",
            "programs and TLS interception, against a fake internet in a network namespace",
            "(documentation-range addresses, nothing leaves the host).",
        ],
    );
    let cordon = std::path::absolute(&args.cordon).unwrap_or_else(|_| args.cordon.clone());
    match setup(&mut n, &cordon, &args.workspace) {
        Some(mut c) => {
            for (step, f) in steps::ALL {
                if interrupted() {
                    c.n.say("interrupted: skipping the remaining chapters and cleaning up");
                    break;
                }
                if let Err(e) = f(&mut c) {
                    c.n.check(&format!("{step} ran to the end"), false, &format!("{e:#}"));
                }
            }
            n = teardown(c);
        }
        None => n.say("setup failed: nothing else can run"),
    }
    n.summary(started.elapsed());
    if n.failures() == 0 && !interrupted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn setup(n: &mut Narrator, cordon: &std::path::Path, workspace: &std::path::Path) -> Option<Ctx> {
    n.chapter(
        "1. Local internet, daemon",
        "A network namespace plays the internet: api.github.com and api.stripe.com (HTTPS with \
         certificates from a throwaway CA), paste.test (plain HTTP) and a UDP port nobody should \
         reach. A DNS server on loopback resolves them. The cordon daemon starts with its own \
         state dir, trusts that CA for upstream TLS, and loads a policy for three agents.",
    );
    if !nix::unistd::geteuid().is_root() {
        n.check("running as root", false, "the demo creates namespaces, cgroups and eBPF programs; run it through `cargo xtask demo` or sudo");
        return None;
    }
    if !cordon.is_file() {
        n.check(
            "cordon binary present",
            false,
            &cordon.display().to_string(),
        );
        return None;
    }
    let features = Features::probe(cordon);
    let probe = match ProbeBin::install() {
        Ok(p) => p,
        Err(e) => {
            n.check("probe helper installed", false, &format!("{e:#}"));
            return None;
        }
    };
    let world = match World::start(cordon, workspace) {
        Ok(w) => w,
        Err(e) => {
            n.check(
                "local internet and daemon started",
                false,
                &format!("{e:#}"),
            );
            return None;
        }
    };
    let layout = world.layout();
    n.alias(&cordon.display().to_string(), "cordon");
    n.alias(&format!(" --state-dir {}", world.state_dir().display()), "");
    n.alias(&probe.path().display().to_string(), "cordon-demo");
    n.say(&format!(
        "api.github.com = {}, api.stripe.com = {}, paste.test = {} (namespace {}). Daemon \
         state in {} (every cordon command below carries --state-dir for it; it is left out \
         when shown). $POLICIES = {}.",
        layout.github_ip,
        layout.stripe_ip,
        layout.paste_ip,
        world.ns.name(),
        world.state_dir().display(),
        world.policies.path().display()
    ));
    // Registered after the line above, which shows the full path once.
    n.alias(&world.policies.path().display().to_string(), "$POLICIES");
    let mut c = Ctx {
        n: std::mem::take(n),
        w: world,
        layout,
        features,
        probe,
        cordon: cordon.to_owned(),
    };
    match steps::setup::show(&mut c) {
        Ok(()) => Some(c),
        Err(e) => {
            c.n.check("daemon answers", false, &format!("{e:#}"));
            *n = teardown(c);
            None
        }
    }
}

/// Drop the world (daemon first, then upstreams and namespace) and hand the narrator back.
fn teardown(c: Ctx) -> Narrator {
    let Ctx { n, w, probe, .. } = c;
    println!();
    n.say("tearing down: stopping the daemon, `cordon cleanup`, removing the namespace");
    drop(w);
    drop(probe);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn args_need_cordon_and_take_workspace() {
        let a = Args::parse(&strings(&["--cordon", "/c", "--workspace", "/w"])).unwrap();
        assert_eq!(
            a,
            Args {
                cordon: "/c".into(),
                workspace: "/w".into()
            }
        );
        assert!(Args::parse(&strings(&["--workspace", "/w"])).is_err());
        assert!(Args::parse(&strings(&["--cordon"])).is_err());
        assert!(Args::parse(&strings(&["--bogus", "x"])).is_err());
    }
}
