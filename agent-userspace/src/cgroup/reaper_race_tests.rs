//! The reaper against launches, on the real cgroup hierarchy (needs root,
//! as the suite runs). A launch finds or creates its agent's directory,
//! creates the instance inside and moves a process in; the reaper removes
//! instances without processes and agent directories without instances.
//! Every launch here must land, however the two interleave.
use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{
    mount::cgroup2_mount,
    tree::{AgentPath, CgroupTree},
};

const LAUNCHES: usize = 300;

/// Removes the test's cgroups, however the test ends.
struct Cleanup {
    tree: CgroupTree,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.tree.reap_empty(&|_| false);
        if let Err(e) = std::fs::remove_dir(self.tree.parent()) {
            eprintln!("cleanup {}: {e}", self.tree.parent().display());
        }
    }
}

#[test]
fn a_launch_racing_the_reaper_always_enters_a_new_instance() {
    let mount = cgroup2_mount().expect("cgroup2 mount (these tests run as root)");
    let name = format!(
        "cordon-test-reap-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let tree = CgroupTree::new(mount, &name);
    tree.ensure_parent().unwrap();
    let _cleanup = Cleanup { tree: tree.clone() };
    let stop = Arc::new(AtomicBool::new(false));
    let reaper = {
        let (tree, stop) = (tree.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut removed = 0;
            while !stop.load(Ordering::Relaxed) {
                removed += tree.reap_empty(&|_| false).len();
            }
            removed
        })
    };
    let top = AgentPath {
        chain: vec![],
        instances: vec![],
    };
    let mut failures = Vec::new();
    for _ in 0..LAUNCHES {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let entered = tree.enter_new_instance(&top, "bot", child.id() as i32);
        // The instance empties at once: the reaper takes it, then the
        // agent's directory, while the next launch is looking for them.
        child.kill().unwrap();
        child.wait().unwrap();
        if let Err(e) = entered {
            failures.push(e.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let removed = reaper.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {LAUNCHES} launches failed, first: {}",
        failures.len(),
        failures[0]
    );
    // Otherwise the reaper never ran between launches, and nothing raced.
    assert!(
        removed >= LAUNCHES,
        "the reaper removed only {removed} cgroups"
    );
}
