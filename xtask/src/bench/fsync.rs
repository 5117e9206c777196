//! The disk's own fdatasync, measured in the run, on the filesystem the
//! daemons' audit logs live on: the strict-durability latency goal is "at
//! most one fsync plus 100 us", so the fsync has to be this machine's,
//! now, not a number from elsewhere.
use std::{
    fs::OpenOptions,
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::median;

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Fsync {
    /// Appends of one audit-record-sized line, each followed by fdatasync.
    pub n: u32,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Appends 300 bytes and fdatasyncs, `n` times, in a fresh file under `dir`
/// (removed after).
pub fn measure(dir: &Path, n: u32) -> anyhow::Result<Fsync> {
    let path = dir.join("fsync-probe.log");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let line = [b'x'; 300];
    let mut took: Vec<Duration> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&line)?;
        f.sync_data()
            .with_context(|| format!("fdatasync of {}", path.display()))?;
        took.push(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(summarize(&took))
}

fn summarize(took: &[Duration]) -> Fsync {
    let us: Vec<f64> = took.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    let mut sorted = us.clone();
    sorted.sort_by(f64::total_cmp);
    let p99 = sorted
        .get(((sorted.len() * 99) / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN);
    Fsync {
        n: took.len() as u32,
        p50_us: if us.is_empty() { f64::NAN } else { median(us) },
        p99_us: p99,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_median_and_the_99th_percentile() {
        let took: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let f = summarize(&took);
        assert_eq!(f.n, 100);
        assert!((f.p50_us - 50.5).abs() < 1e-6, "{}", f.p50_us);
        assert!((f.p99_us - 100.0).abs() < 1e-6, "{}", f.p99_us);
    }

    #[test]
    fn a_real_fsync_is_measured_and_its_file_removed() {
        let dir = std::env::temp_dir().join(format!("xtask-fsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = measure(&dir, 5).unwrap();
        assert_eq!(f.n, 5);
        assert!(f.p50_us > 0.0);
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
        std::fs::remove_dir(&dir).unwrap();
    }
}
