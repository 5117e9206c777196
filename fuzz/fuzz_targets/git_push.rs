//! git receive-pack request bodies (`cordon_connectors::git::parse_push`):
//! pkt-line commands and capabilities, then the pack (entries inflated,
//! deltas resolved, within `PackLimits`) read to prove fast-forwards, and
//! the report-status refusal built for the commands.
//!
//! Checks: nothing panics or runs away (libFuzzer's time and memory
//! limits); a body cut short (as the proxy's body limit cuts it) with its
//! command list whole gives the same refs, and proves no fast-forward the
//! whole body does not prove (less pack can only mean `force: true`).
#![no_main]

use cordon_connectors::git::{PackLimits, parse_push, refusal_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PackLimits::default();
    let Ok(whole) = parse_push(data, &limits) else {
        return;
    };
    refusal_body(&whole.commands, &[], "fuzzing");
    let cut = whole.commands.pack_offset + (data.len() - whole.commands.pack_offset) / 2;
    let Ok(prefix) = parse_push(&data[..cut], &limits) else {
        panic!("the command list parsed whole but not with the pack cut");
    };
    assert_eq!(
        prefix.commands.commands, whole.commands.commands,
        "the cut changed the refs"
    );
    for (short, full) in prefix.updates.iter().zip(&whole.updates) {
        assert!(
            short.force || !full.force,
            "{}: a cut pack proved a fast-forward the whole pack does not",
            short.command.refname
        );
    }
});
