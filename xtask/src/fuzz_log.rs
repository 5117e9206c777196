//! What a fuzz run's log says: its figures, and the tail shown when a step
//! failed.

/// What one run reported in its last status line.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub runs: u64,
    pub exec_per_sec: u64,
    pub cov: u64,
    pub features: u64,
    pub corpus: u64,
}

/// The last 40 lines of a failed step's log, each marked with `label`.
pub(crate) fn show_tail(label: &str, log: &str) {
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    for line in tail.iter().rev() {
        eprintln!("  {label}: {line}");
    }
}

/// The last `DONE` (or pulse) line: `#N DONE cov: C ft: F corp: K/.. exec/s: E`.
pub(crate) fn figures(log: &str) -> Figures {
    let Some(line) = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(" cov: "))
    else {
        return Figures::default();
    };
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Figures {
        runs: line
            .split_whitespace()
            .next()
            .and_then(|n| n.trim_start_matches('#').parse().ok())
            .unwrap_or(0),
        exec_per_sec: field("exec/s:"),
        cov: field("cov:"),
        features: field("ft:"),
        corpus: field("corp:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_the_last_status_line() {
        let log = "#2 INITED cov: 5 ft: 6 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                   #600\tDONE   cov: 1864 ft: 4562 corp: 433/22Kb lim: 116 exec/s: 2172 rss: 95Mb\n\
                   Done 600 runs in 1 second(s)\n";
        let f = figures(log);
        assert_eq!(
            (f.runs, f.cov, f.features, f.corpus, f.exec_per_sec),
            (600, 1864, 4562, 433, 2172)
        );
    }
}
