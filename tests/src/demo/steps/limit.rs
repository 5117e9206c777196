//! Chapter 5: a rate limit. The support agent may create 3 charges a minute; the 4th in a row
//! is refused before it reaches Stripe.

use crate::demo::agent::Curl;
use crate::demo::ctx::Ctx;
use crate::demo::policy::CHARGES_PER_MINUTE;

pub(super) fn run(c: &mut Ctx) -> anyhow::Result<()> {
    c.n.chapter(
        "5. Rate limit",
        "support may create small charges, but its [[limit]] allows 3 stripe.charge.create per \
         minute (sliding window). It tries 4 in a row.",
    );
    let charges = || {
        c.w.stripe
            .received()
            .iter()
            .filter(|q| q.method == "POST" && q.path == "/v1/charges")
            .count()
    };
    let before = charges();
    let mut statuses = Vec::new();
    let mut last_rule = String::new();
    for i in 1..=CHARGES_PER_MINUTE + 1 {
        c.n.say(&format!("charge {i}:"));
        let r = c.agent_curl(
            "support",
            &Curl::new("POST", "https://api.stripe.com/v1/charges")
                .form(&format!("amount=500&currency=usd&description=order-{i}")),
        )?;
        statuses.push(r.status);
        last_rule = r.field("rule");
    }
    let reached = charges() - before;
    c.n.shows("the first three were allowed by rule `charge` and reached Stripe; the fourth was refused by the limit (rule limit:demo-charges) and did not.");
    let want_ok = usize::try_from(CHARGES_PER_MINUTE).unwrap_or(usize::MAX);
    let allowed_ok = statuses[..want_ok].iter().all(|s| *s == Some(200));
    c.n.check(
        "support's first 3 charges go through",
        allowed_ok && reached == want_ok,
        &format!("statuses {statuses:?}, Stripe saw {reached}"),
    );
    c.n.check(
        "the 4th charge within a minute is refused by the limit",
        statuses.last() == Some(&Some(403))
            && last_rule == "limit:demo-charges"
            && reached == want_ok,
        &format!("rule {last_rule:?}"),
    );
    Ok(())
}
