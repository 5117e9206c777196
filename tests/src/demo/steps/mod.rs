//! The chapters of the walk-through, in order. Each shows real commands and marks its claims.

mod actions;
mod approval;
mod audit;
mod console;
mod contain;
mod credentials;
mod doctor;
mod egress;
mod git_push;
mod jit;
mod kill;
mod learn;
mod limit;
mod load;
mod mcp;
mod root;
pub(super) mod setup;
mod upgrade;

use super::ctx::Ctx;

type Step = fn(&mut Ctx) -> anyhow::Result<()>;

/// Chapters 2 onwards (chapter 1 is the setup).
pub(super) const ALL: &[(&str, Step)] = &[
    ("2. Forced egress", egress::run),
    ("3. Actions", actions::run),
    ("4. Human approval", approval::run),
    ("5. Rate limit", limit::run),
    ("6. Kill switch", kill::run),
    ("7. Audit trail", audit::run),
    ("8. Credentials", credentials::run),
    ("9. Host containment", contain::run),
    ("10. Root agents", root::run),
    ("11. MCP tool calls", mcp::run),
    ("12. git push by ref", git_push::run),
    ("13. Just-in-time credentials", jit::run),
    ("14. Learn mode", learn::run),
    ("15. Web console", console::run),
    ("16. Doctor", doctor::run),
    ("17. Upgrade in place", upgrade::run),
    ("18. A connect loop", load::run),
];
