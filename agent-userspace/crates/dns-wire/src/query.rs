//! An agent's DNS query: the question Cordon decides on, and the answers
//! that refuse it without asking upstream.
use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::Name,
};

/// A datagram that parsed as a DNS query (not a response).
#[derive(Debug, Clone)]
pub struct Query {
    msg: Message,
}

/// What the policy decides on: the query's one question, its name
/// lowercased and without the root dot, and its record type (`A`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: String,
}

impl Query {
    /// `None` for anything that is not a well-formed DNS query: such a
    /// datagram gets no answer at all, as a resolver drops garbage.
    pub fn parse(datagram: &[u8]) -> Option<Query> {
        let msg = Message::from_vec(datagram).ok()?;
        (msg.message_type() == MessageType::Query).then_some(Query { msg })
    }

    /// The question to decide on. `None`, which is refused, when the query
    /// does not ask exactly one question (the whole datagram is forwarded,
    /// so a second question would be answered without being decided), or
    /// when the name's text is not plainly the name the upstream is asked
    /// for: hickory shows `xn--` labels decoded (some decode to another
    /// label's text) and escapes bytes no host name has (`\.` inside a
    /// label, which also defeats stripping the root dot).
    pub fn question(&self) -> Option<Question> {
        let [q] = self.msg.queries() else {
            return None;
        };
        let text = q.name().to_utf8();
        let name = text.strip_suffix('.').unwrap_or(&text);
        if name.contains('\\') || Name::from_utf8(format!("{name}.")).ok()? != *q.name() {
            return None;
        }
        Some(Question {
            name: name.to_ascii_lowercase(),
            qtype: q.query_type().to_string(),
        })
    }

    /// The answer to a query the policy (or a missing kernel record)
    /// refused.
    pub fn refused(&self) -> Option<Vec<u8>> {
        self.reply_code(ResponseCode::Refused)
    }

    /// The answer to an allowed query no upstream answered.
    pub fn servfail(&self) -> Option<Vec<u8>> {
        self.reply_code(ResponseCode::ServFail)
    }

    /// `None` only when the echoed question cannot be encoded again, in
    /// which case the agent gets no answer (it times out, as for garbage).
    fn reply_code(&self, code: ResponseCode) -> Option<Vec<u8>> {
        let q = &self.msg;
        let mut m = Message::error_msg(q.id(), q.op_code(), code);
        m.set_recursion_desired(q.recursion_desired());
        m.set_recursion_available(true);
        m.add_queries(q.queries().to_vec());
        m.to_vec().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::{
        op::{OpCode, Query as HQuery},
        rr::RecordType,
    };

    fn query_bytes(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
        m.to_vec().unwrap()
    }

    #[test]
    fn question_is_lowercased_without_the_root_dot() {
        let q = Query::parse(&query_bytes("API.Example.TEST.", RecordType::AAAA, 7)).unwrap();
        assert_eq!(
            q.question(),
            Some(Question {
                name: "api.example.test".into(),
                qtype: "AAAA".into()
            })
        );
    }

    #[test]
    fn responses_and_garbage_are_not_queries() {
        let mut reply = Message::from_vec(&query_bytes("x.test.", RecordType::A, 1)).unwrap();
        reply.set_message_type(MessageType::Response);
        assert!(Query::parse(&reply.to_vec().unwrap()).is_none());
        assert!(Query::parse(b"\x00\x01 not dns").is_none());
        assert!(Query::parse(&[]).is_none());
    }

    #[test]
    fn a_query_without_questions_has_nothing_to_decide() {
        let mut m = Message::new();
        m.set_id(9).set_message_type(MessageType::Query);
        let q = Query::parse(&m.to_vec().unwrap()).unwrap();
        assert_eq!(q.question(), None);
    }

    #[test]
    fn a_query_asking_two_questions_is_not_decided() {
        let mut m = Message::from_vec(&query_bytes("allowed.test.", RecordType::A, 5)).unwrap();
        m.add_query(HQuery::query(
            Name::from_ascii("other.test.").unwrap(),
            RecordType::A,
        ));
        let q = Query::parse(&m.to_vec().unwrap()).unwrap();
        assert_eq!(q.question(), None);
        let r = Message::from_vec(&q.refused().unwrap()).unwrap();
        assert_eq!(r.queries().len(), 2, "the refusal still echoes both");
    }

    #[test]
    fn a_name_whose_text_reads_back_as_another_is_not_decided() {
        // `xn--github-` is shown as `github`, which names another label.
        let q = Query::parse(&query_bytes("xn--github-.com.", RecordType::A, 6)).unwrap();
        assert_eq!(q.question(), None);
        // A well-formed IDN is decided on in its Unicode form.
        let q = Query::parse(&query_bytes("xn--bcher-kva.test.", RecordType::A, 6)).unwrap();
        assert_eq!(q.question().unwrap().name, "bücher.test");
    }

    #[test]
    fn a_name_with_bytes_no_host_name_has_is_not_decided() {
        let mut m = Message::new();
        m.set_id(8)
            .set_message_type(MessageType::Query)
            .add_query(HQuery::query(
                Name::from_labels(vec![b"a.".to_vec(), b"test".to_vec()]).unwrap(),
                RecordType::A,
            ));
        let q = Query::parse(&m.to_vec().unwrap()).unwrap();
        assert_eq!(q.question(), None);
        m.queries_mut()[0].set_name(Name::from_labels(vec![b".".to_vec()]).unwrap());
        let q = Query::parse(&m.to_vec().unwrap()).unwrap();
        assert_eq!(q.question(), None);
    }

    #[test]
    fn the_root_name_is_decided_as_empty() {
        let q = Query::parse(&query_bytes(".", RecordType::NS, 2)).unwrap();
        assert_eq!(q.question().unwrap().name, "");
    }

    #[test]
    fn refusal_echoes_id_flags_and_question() {
        let q = Query::parse(&query_bytes("blocked.test.", RecordType::A, 0x4242)).unwrap();
        let r = Message::from_vec(&q.refused().unwrap()).unwrap();
        assert_eq!(r.id(), 0x4242);
        assert_eq!(r.message_type(), MessageType::Response);
        assert_eq!(r.response_code(), ResponseCode::Refused);
        assert!(r.recursion_desired());
        assert!(r.recursion_available());
        assert_eq!(r.queries(), q.msg.queries());
        assert!(r.answers().is_empty());
    }

    #[test]
    fn servfail_is_the_same_answer_with_its_own_code() {
        let q = Query::parse(&query_bytes("slow.test.", RecordType::A, 3)).unwrap();
        let r = Message::from_vec(&q.servfail().unwrap()).unwrap();
        assert_eq!(r.id(), 3);
        assert_eq!(r.response_code(), ResponseCode::ServFail);
        assert_eq!(r.queries(), q.msg.queries());
    }
}
