//! Wakeups per request (issue 18): how often the proxy's threads wake another thread, and how
//! often they are switched out, during a load run, divided by its successful requests.
//!
//! Counted with the `sched:sched_wakeup` and `sched:sched_switch` tracepoints through
//! `perf stat -p` on the proxy's processes. A wakeup is counted in the context it is issued
//! from, so this is the wakeups the proxy's threads issue (to each other, or to the client
//! and upstream over loopback), and a switch is one of its threads leaving the CPU (it
//! blocked, or was preempted). Without a working perf the run falls back to the threads'
//! voluntary + involuntary context switches from /proc, and says so: that gives switches,
//! not wakeups.
use std::fmt::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use super::{Results, median, proc, rig::Via};

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `perf stat -e sched:sched_wakeup,sched:sched_switch`.
    Perf,
    /// /proc/PID/task/*/status context switches (perf was missing or could not count).
    ProcSwitches,
}

/// What one run counted.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub wakeups: Option<u64>,
    pub switches: u64,
    pub source: Source,
}

/// Counting in progress for one run.
pub struct Counter {
    pids: Vec<u32>,
    switches0: u64,
    perf: Option<(Child, PathBuf)>,
}

/// How long perf gets to attach before the load starts.
const ATTACH: Duration = Duration::from_millis(300);

impl Counter {
    /// Starts counting for `root` and its child processes.
    pub fn start(root: u32) -> Counter {
        let pids = proc::tree(root);
        let switches0 = switches(&pids);
        let out = std::env::temp_dir().join(format!(
            "cordon-bench-wakeups-{}-{root}.csv",
            std::process::id()
        ));
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        let perf = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                "sched:sched_wakeup,sched:sched_switch",
            ])
            .arg("-o")
            .arg(&out)
            .args(["-p", &list.join(",")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        if perf.is_some() {
            std::thread::sleep(ATTACH);
        }
        Counter {
            pids,
            switches0,
            perf: perf.map(|c| (c, out)),
        }
    }

    pub fn finish(self) -> Counts {
        let switched = switches(&self.pids).saturating_sub(self.switches0);
        let fallback = Counts {
            wakeups: None,
            switches: switched,
            source: Source::ProcSwitches,
        };
        let Some((mut child, out)) = self.perf else {
            return fallback;
        };
        // perf prints its counts when interrupted.
        let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        // SAFETY: kill has no memory preconditions; the pid is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        if child.wait().is_err() {
            return fallback;
        }
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        // A leftover file would only be overwritten by the next run of this pid.
        let _ = std::fs::remove_file(&out);
        match parse_perf_csv(&text) {
            Some((wakeups, switches)) => Counts {
                wakeups: Some(wakeups),
                switches,
                source: Source::Perf,
            },
            None => fallback,
        }
    }
}

/// The wakeup and switch counts of `perf stat -x,` output; `None` unless both were counted.
/// Lines are `value,unit,event,run time,percent,...`; comments start with `#`, and an event
/// perf could not count has `<not counted>` or `<not supported>` as its value.
pub fn parse_perf_csv(text: &str) -> Option<(u64, u64)> {
    let (mut wakeups, mut switches) = (None, None);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(value), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let Ok(n) = value.trim().parse::<u64>() else {
            continue;
        };
        match event.trim() {
            "sched:sched_wakeup" => wakeups = Some(n),
            "sched:sched_switch" => switches = Some(n),
            _ => {}
        }
    }
    Some((wakeups?, switches?))
}

/// Voluntary + involuntary context switches of every thread of these processes.
fn switches(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            total += status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    total
}

/// Per request, over the runs of one via: (wakeups, switches) medians and the source.
pub fn per_request(runs: &[(Counts, u64)]) -> Option<(Option<f64>, f64, Source)> {
    let ok: Vec<&(Counts, u64)> = runs.iter().filter(|(_, n)| *n > 0).collect();
    if ok.is_empty() {
        return None;
    }
    let wakeups: Vec<f64> = ok
        .iter()
        .filter_map(|(c, n)| Some(c.wakeups? as f64 / *n as f64))
        .collect();
    let switches = median(
        ok.iter()
            .map(|(c, n)| c.switches as f64 / *n as f64)
            .collect(),
    );
    // One run without perf makes the figure a /proc one.
    let source = if ok.iter().all(|(c, _)| c.source == Source::Perf) {
        Source::Perf
    } else {
        Source::ProcSwitches
    };
    Some((
        (wakeups.len() == ok.len()).then(|| median(wakeups)),
        switches,
        source,
    ))
}

/// The report's section: wakeups and switches per keep-alive request, per via.
pub fn section(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Wakeups per request\n");
    let _ = writeln!(
        s,
        "During each load run the proxy's processes are counted with `perf stat -e \
         sched:sched_wakeup,sched:sched_switch -p PID`: wakeups its threads issue (to each other, \
         and to oha and nginx over loopback), and times its threads leave the CPU, divided by the \
         run's successful requests (median over rounds). Where perf could not count, the row \
         gives context switches from /proc instead and says so.\n"
    );
    for sc in r.http.iter().filter(|sc| sc.id == "https-keepalive") {
        let _ = writeln!(s, "`{}` (`{}`):\n", sc.title, sc.load);
        let _ = writeln!(
            s,
            "| via | wakeups/req | context switches/req | counted with |\n|---|---|---|---|"
        );
        for v in &sc.vias {
            let Some((wakeups, switches, source)) = v.wakeups_per_req else {
                continue;
            };
            let how = match source {
                Source::Perf => "perf tracepoints",
                Source::ProcSwitches => "/proc context switches (perf could not count)",
            };
            let w = wakeups.map_or("-".into(), |w| format!("{w:.2}"));
            let _ = writeln!(s, "| {} | {w} | {switches:.2} | {how} |", v.via.name());
        }
        let ratio = |a: Via| {
            let get = |via| sc.via(via)?.wakeups_per_req?.0;
            Some(get(a)? / get(Via::Bare)?)
        };
        if let Some(x) = ratio(Via::Cordon) {
            let _ = writeln!(
                s,
                "\nCordon (strict) issues {x:.2}x the bare forwarder's wakeups per request."
            );
        }
        let _ = writeln!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv_gives_both_counts_and_skips_comments_and_other_events() {
        let text = "# started on Sat Dec  5 12:31:32 2026\n\n\
                    1234,,sched:sched_wakeup,1000951234,100.00,,\n\
                    98765,,sched:sched_switch,1000951234,100.00,,\n\
                    55.2,msec,task-clock,55200000,100.00,0.055,CPUs utilized\n";
        assert_eq!(parse_perf_csv(text), Some((1234, 98765)));
    }

    #[test]
    fn an_event_perf_could_not_count_is_no_figure_not_a_zero() {
        let text = "<not counted>,,sched:sched_wakeup,0,100.00,,\n\
                    <not counted>,,sched:sched_switch,0,100.00,,\n";
        assert_eq!(parse_perf_csv(text), None);
        let one = "12,,sched:sched_wakeup,5,100.00,,\n<not supported>,,sched:sched_switch,,,\n";
        assert_eq!(parse_perf_csv(one), None);
        assert_eq!(parse_perf_csv(""), None);
    }

    #[test]
    fn a_process_that_sleeps_in_a_loop_is_seen_switching_and_waking() {
        let mut child = Command::new("python3")
            .args(["-c", "import time\nwhile True: time.sleep(0.002)"])
            .spawn()
            .expect("python3");
        std::thread::sleep(Duration::from_millis(200));
        let counter = Counter::start(child.id());
        std::thread::sleep(Duration::from_millis(500));
        let counts = counter.finish();
        child.kill().expect("kill");
        child.wait().expect("reap");
        // 500 ms of 2 ms sleeps: about 250 switches, however they were counted.
        assert!(counts.switches > 50, "{counts:?}");
        if counts.source == Source::Perf {
            assert!(counts.wakeups.is_some());
        }
        eprintln!("{counts:?}");
    }

    #[test]
    fn per_request_figures_are_medians_and_say_when_perf_was_missing() {
        let perf = |w, s| Counts {
            wakeups: Some(w),
            switches: s,
            source: Source::Perf,
        };
        let runs = [
            (perf(300, 400), 100),
            (perf(500, 600), 100),
            (perf(200, 300), 100),
        ];
        assert_eq!(per_request(&runs), Some((Some(3.0), 4.0, Source::Perf)));
        let proc_only = Counts {
            wakeups: None,
            switches: 50,
            source: Source::ProcSwitches,
        };
        assert_eq!(
            per_request(&[(perf(300, 400), 100), (proc_only, 100)]),
            Some((None, 2.25, Source::ProcSwitches))
        );
        assert_eq!(per_request(&[(proc_only, 0)]), None);
    }
}
