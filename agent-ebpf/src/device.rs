//! The device allowlist for contained agents (`agent_common::devices` says
//! what it allows and why). A cgroup device program: the kernel runs it on
//! every open and mknod of a device node by a task below the Cordon parent,
//! before file modes are consulted; returning 0 fails the call with EPERM.
//! Agents without containment (`contain = "off"`) are not judged here.
use agent_common::devices::device_allowed;
use aya_ebpf::{macros::cgroup_device, programs::DeviceContext};

use crate::{kernel::any_profile, maps::CONFIG};

const ALLOW: i32 = 1;
const DENY: i32 = 0;

#[cgroup_device]
pub fn cordon_device(ctx: DeviceContext) -> i32 {
    let Some(cfg) = CONFIG.get(0) else {
        return DENY;
    };
    if !any_profile(cfg.parent_level) {
        return ALLOW;
    }
    // SAFETY: the context pointer is valid for the program's lifetime.
    let dev = unsafe { &*ctx.device };
    if device_allowed(dev.access_type, dev.major, dev.minor) {
        ALLOW
    } else {
        DENY
    }
}
