//! DNS queries an agent's resolver sends for the route hosts, and the kind
//! of answers an upstream gives (addresses behind a CNAME).
use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME},
    },
};

pub fn messages(hosts: &[String]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let Ok(name) = Name::from_ascii(format!("{host}.")) else {
            continue;
        };
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            let mut q = Message::new();
            q.set_id(i as u16)
                .set_message_type(MessageType::Query)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(true)
                .add_query(Query::query(name.clone(), qtype));
            if qtype == RecordType::AAAA {
                q.set_edns(Edns::new());
            }
            out.push(q.to_vec().expect("encoding a query"));
        }
        let mut answer = Message::new();
        answer
            .set_id(i as u16)
            .set_message_type(MessageType::Response)
            .add_query(Query::query(name.clone(), RecordType::A));
        let edge = Name::from_ascii("edge.cdn.test.").expect("a name");
        answer.add_answer(Record::from_rdata(
            name,
            60,
            RData::CNAME(CNAME(edge.clone())),
        ));
        answer.add_answer(Record::from_rdata(
            edge.clone(),
            30,
            RData::A(A::new(203, 0, 113, 7)),
        ));
        answer.add_answer(Record::from_rdata(
            edge,
            30,
            RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        ));
        out.push(answer.to_vec().expect("encoding an answer"));
    }
    out
}
