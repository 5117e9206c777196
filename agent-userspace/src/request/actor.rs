//! Who is asking: the agent the kernel attributed the flow to.
use std::sync::Arc;

use crate::{bpf::maps::FlowOrigin, cgroup::AgentPath};

/// Who acted, as the kernel attested it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub agent: AgentPath,
    pub origin: FlowOrigin,
    /// The executable of the process that opened the flow (the kernel's pid),
    /// read once per flow rather than per request on a kept-alive
    /// connection: by the proxy when the flow's first bytes (or its reset)
    /// arrive, so a reset probe only counted in a burst costs no /proc read.
    /// A process that execs between its connect and its first bytes is
    /// named by the image that sent them; the pid is the kernel's either way.
    pub exe: Option<Arc<str>>,
}

impl Actor {
    pub fn new(agent: AgentPath, origin: FlowOrigin) -> Actor {
        let mut actor = Actor::unread(agent, origin);
        actor.read_exe();
        actor
    }

    /// Without its executable yet: a flow that may need no record reads it
    /// only once it does (`read_exe`), a readlink of /proc saved per
    /// connection in a connect loop.
    pub fn unread(agent: AgentPath, origin: FlowOrigin) -> Actor {
        Actor {
            agent,
            origin,
            exe: None,
        }
    }

    pub fn read_exe(&mut self) {
        self.exe = exe_of(self.origin.pid).map(Arc::from);
    }
}

/// The executable of a process, as /proc says now (`None` once it is gone).
pub fn exe_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.display().to_string())
}
