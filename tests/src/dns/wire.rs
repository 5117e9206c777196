//! Pure DNS answering: request bytes in, response bytes out, for a fixed name->address table.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

/// Classic UDP limit when the client sent no EDNS.
const PLAIN_UDP_LIMIT: usize = 512;
/// What we advertise (and cap at) for EDNS clients.
const EDNS_UDP_LIMIT: u16 = 1232;

/// A lower-cased name without trailing dot, e.g. `api.github.com`.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What a query asked, for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLog {
    pub name: String,
    pub qtype: RecordType,
}

/// Answer `request`. `None` means drop it (too short to carry an id, or itself a response).
pub(crate) fn respond(
    request: &[u8],
    table: &HashMap<String, Vec<IpAddr>>,
    ttl: u32,
    udp: bool,
) -> Option<(Vec<u8>, Option<QueryLog>)> {
    let (id, qr, opcode) = match request {
        [hi, lo, flags, ..] if request.len() >= Header::len() => (
            u16::from_be_bytes([*hi, *lo]),
            flags & 0x80 != 0,
            (flags >> 3) & 0x0f,
        ),
        _ => return None,
    };
    if qr {
        return None;
    }
    let Ok(msg) = Message::from_vec(request) else {
        let err = Message::error_msg(id, OpCode::from_u8(opcode), ResponseCode::FormErr);
        return Some((err.to_vec().ok()?, None));
    };
    let mut resp = Message::new();
    resp.set_header(Header::response_from_request(msg.header()));
    resp.add_queries(msg.queries().iter().cloned());
    if let Some(edns) = msg.extensions() {
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_UDP_LIMIT.min(edns.max_payload().max(512)));
        resp.set_edns(ours);
    }
    let log = fill(&mut resp, &msg, table, ttl);
    let bytes = resp.to_vec().ok()?;
    let limit = match msg.extensions() {
        Some(edns) => usize::from(EDNS_UDP_LIMIT.min(edns.max_payload().max(512))),
        None => PLAIN_UDP_LIMIT,
    };
    if udp && bytes.len() > limit {
        // Tell the client to retry over TCP rather than sending a clipped answer.
        resp.take_answers();
        resp.set_truncated(true);
        return Some((resp.to_vec().ok()?, log));
    }
    Some((bytes, log))
}

fn fill(
    resp: &mut Message,
    msg: &Message,
    table: &HashMap<String, Vec<IpAddr>>,
    ttl: u32,
) -> Option<QueryLog> {
    if msg.message_type() != MessageType::Query || msg.op_code() != OpCode::Query {
        resp.set_response_code(ResponseCode::NotImp);
        return None;
    }
    let [query] = msg.queries() else {
        resp.set_response_code(ResponseCode::FormErr);
        return None;
    };
    let log = QueryLog {
        name: normalize(&query.name().to_ascii()),
        qtype: query.query_type(),
    };
    if query.query_class() != DNSClass::IN {
        resp.set_response_code(ResponseCode::Refused);
        return Some(log);
    }
    resp.set_authoritative(true).set_recursion_available(true);
    let Some(addrs) = table.get(&log.name) else {
        resp.set_response_code(ResponseCode::NXDomain);
        return Some(log);
    };
    // A known name with no address of the asked type is NOERROR with no answers (NODATA).
    for addr in addrs {
        let rdata = match (addr, query.query_type()) {
            (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
            (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
            _ => continue,
        };
        resp.add_answer(Record::from_rdata(query.name().clone(), ttl, rdata));
    }
    Some(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn table() -> HashMap<String, Vec<IpAddr>> {
        let mut t = HashMap::new();
        t.insert(
            "allowed.test".to_owned(),
            vec![
                "203.0.113.2".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ],
        );
        t
    }

    fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_a_for_known_name_echoing_id_question_and_rd() {
        let (bytes, log) = respond(
            &query(4242, "Allowed.Test.", RecordType::A),
            &table(),
            60,
            true,
        )
        .unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.id(), 4242);
        assert_eq!(r.message_type(), MessageType::Response);
        assert!(r.recursion_desired() && r.authoritative());
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.queries().len(), 1);
        assert_eq!(r.queries()[0].query_type(), RecordType::A);
        let ips: Vec<_> = r.answers().iter().map(|a| a.data().ip_addr()).collect();
        assert_eq!(ips, vec![Some("203.0.113.2".parse().unwrap())]);
        assert_eq!(log.unwrap().name, "allowed.test");
    }

    #[test]
    fn known_name_without_that_family_is_nodata_not_nxdomain() {
        let mut t = table();
        t.insert("v4only.test".into(), vec!["203.0.113.3".parse().unwrap()]);
        let (bytes, _) = respond(&query(1, "v4only.test", RecordType::AAAA), &t, 60, true).unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.answers().is_empty());
    }

    #[test]
    fn unknown_name_is_nxdomain() {
        let (bytes, _) =
            respond(&query(7, "nope.test", RecordType::A), &table(), 60, true).unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
        assert_eq!(r.id(), 7);
    }

    #[test]
    fn garbage_after_header_is_formerr_with_same_id() {
        let mut bad = query(99, "allowed.test", RecordType::A);
        bad.truncate(15);
        let (bytes, log) = respond(&bad, &table(), 60, true).unwrap();
        assert!(log.is_none());
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!((r.id(), r.response_code()), (99, ResponseCode::FormErr));
    }

    #[test]
    fn responses_and_runts_are_dropped() {
        assert!(respond(&[0u8; 5], &table(), 60, true).is_none());
        let mut resp = query(1, "allowed.test", RecordType::A);
        resp[2] |= 0x80;
        assert!(respond(&resp, &table(), 60, true).is_none());
    }
}
