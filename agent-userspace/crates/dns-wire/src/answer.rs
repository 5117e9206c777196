//! Reading an upstream's reply: the addresses it gives, and how long each
//! may be remembered.
use std::{net::IpAddr, time::Duration};

use hickory_proto::{op::Message, rr::RData};

/// One address record of an answer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub ip: IpAddr,
    pub ttl: Duration,
}

/// Every A and AAAA record in the answer section, in order, whatever name
/// it is for: a CNAME chain's addresses belong to the name the agent asked
/// for. A reply that does not parse gives none (it is still relayed: the
/// agent's resolver judges it, Cordon just learns nothing from it).
pub fn answered_addresses(reply: &[u8]) -> Vec<Answered> {
    let Ok(msg) = Message::from_vec(reply) else {
        return Vec::new();
    };
    msg.answers()
        .iter()
        .filter_map(|rec| {
            let ip = match rec.data() {
                RData::A(a) => IpAddr::from(a.0),
                RData::AAAA(a) => IpAddr::from(a.0),
                _ => return None,
            };
            Some(Answered {
                ip,
                ttl: Duration::from_secs(rec.ttl().into()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::{
        op::MessageType,
        rr::{
            Name, Record,
            rdata::{A, AAAA, CNAME},
        },
    };

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn addresses_of_a_cname_chain_are_all_read() {
        let mut m = Message::new();
        m.set_id(1).set_message_type(MessageType::Response);
        m.add_answer(Record::from_rdata(
            name("api.example.test."),
            60,
            RData::CNAME(CNAME(name("edge.cdn.test."))),
        ));
        m.add_answer(Record::from_rdata(
            name("edge.cdn.test."),
            30,
            RData::A(A::new(203, 0, 113, 7)),
        ));
        m.add_answer(Record::from_rdata(
            name("edge.cdn.test."),
            90,
            RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        ));
        let got = answered_addresses(&m.to_vec().unwrap());
        assert_eq!(
            got,
            vec![
                Answered {
                    ip: "203.0.113.7".parse().unwrap(),
                    ttl: Duration::from_secs(30)
                },
                Answered {
                    ip: "2001:db8::1".parse().unwrap(),
                    ttl: Duration::from_secs(90)
                },
            ]
        );
    }

    #[test]
    fn an_unparsable_reply_gives_no_addresses() {
        assert!(answered_addresses(b"\x12\x34garbage").is_empty());
        assert!(answered_addresses(&[]).is_empty());
    }
}
