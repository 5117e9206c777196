//! The resolver's wire side (cordon-dns-wire): an agent's query read into
//! the question policy decides on, the REFUSED and SERVFAIL answers, and
//! the addresses read out of an upstream reply. Differential against
//! hickory's own parse of the same datagram.
//!
//! Checks: nothing panics; the refusals parse back (with hickory) as
//! answers to this query: same id, the right code, the same questions; and
//! the name policy decides on is exactly the name the forwarded datagram
//! asks the upstream for (hickory re-reading the decided text gives the
//! wire name, and the datagram asks nothing else).
#![no_main]

use cordon_dns_wire::{Query, answered_addresses};
use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::Name,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The same bytes as an upstream's reply: addresses come out or none.
    answered_addresses(data);
    let Some(query) = Query::parse(data) else {
        return;
    };
    let wire = Message::from_vec(data).expect("a parsed query is a DNS message");
    assert_eq!(wire.message_type(), MessageType::Query);
    for (reply, code) in [
        (query.refused(), ResponseCode::Refused),
        (query.servfail(), ResponseCode::ServFail),
    ] {
        let Some(reply) = reply else { continue };
        let reply = Message::from_vec(&reply).expect("our answer parses");
        assert_eq!(reply.id(), wire.id());
        assert_eq!(reply.message_type(), MessageType::Response);
        assert_eq!(reply.response_code(), code);
        assert_eq!(reply.queries(), wire.queries());
        assert!(reply.answers().is_empty());
    }
    let Some(question) = query.question() else {
        return;
    };
    assert_eq!(
        wire.queries().len(),
        1,
        "decided on {:?} but the datagram asks {} questions",
        question.name,
        wire.queries().len()
    );
    let asked = wire.queries()[0].name();
    let decided = Name::from_utf8(format!("{}.", question.name))
        .unwrap_or_else(|e| panic!("decided on {:?}, which is no name: {e}", question.name));
    assert!(
        decided == *asked,
        "decided on {:?}, but the upstream is asked for {:?}",
        question.name,
        asked.to_ascii()
    );
    assert_eq!(question.qtype, wire.queries()[0].query_type().to_string());
});
