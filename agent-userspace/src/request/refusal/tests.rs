use super::*;

fn v1() -> Attribution {
    Attribution::cordon(Arc::from("v1"))
}

#[test]
fn a_refusal_takes_its_rule_status_and_error_from_its_kind() {
    let r = Refusal::new(Kind::AuditUnavailable, "disk gone", v1());
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&*r.decision().rule_id, "audit-unavailable");
    assert_eq!(r.kind().error(), "audit unavailable");
    let r = Refusal::new(Kind::HeaderLimit, "too big", v1());
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let r = Refusal::new(Kind::ForeignCredential, "not ours", v1());
    assert_eq!(
        (r.status(), r.kind().error()),
        (StatusCode::FORBIDDEN, "credential refused")
    );
}

#[test]
fn cordon_refusals_are_attributed_to_cordon_whichever_stage_refused() {
    for kind in [
        Kind::Malformed,
        Kind::DomainFronting,
        Kind::ConnectorCut,
        Kind::TlsHandshake,
    ] {
        let r = Refusal::new(kind, "x", v1());
        assert_eq!(&*r.decision().decided_by, CORDON);
        assert_eq!(&*r.decision().policy_version, "v1");
        assert_eq!(r.decision().source, Source::Cordon);
        assert_eq!(r.decision().verdict, Verdict::Deny);
    }
}

#[test]
fn a_policy_refusal_keeps_the_rule_source_and_agent_that_decided() {
    let d = Decision {
        verdict: Verdict::Deny,
        rule_id: Arc::from("limit:burst"),
        reason: Arc::from("too many"),
        decided_by: Arc::from("bot"),
        policy_version: Arc::from("v7"),
        source: Source::Limit,
    };
    let r = Refusal::of_policy(&d);
    assert_eq!(r.decision(), &d);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.kind().error(), "denied by policy");
}

#[test]
fn only_a_recorded_refusal_has_an_audit_id() {
    let r = Refusal::new(Kind::Malformed, "x", v1());
    assert_eq!((r.audit(), r.audit_id()), (Recorded::No, None));
    let r = r.recorded(Recorded::Yes(9));
    assert_eq!(r.audit_id(), Some(9));
    assert_eq!(r.recorded(Recorded::Failed).audit_id(), None);
}
