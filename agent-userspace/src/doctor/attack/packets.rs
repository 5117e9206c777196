//! The bytes some probes send, built by hand because the point is to go
//! around the socket layer Cordon hooks: a UDP header for a raw socket, an
//! IPv4 packet for a packet socket, a QUIC Initial and DNS queries. Pure.
use std::net::Ipv4Addr;

/// UDP header plus payload. Checksum 0 means "none", which IPv4 allows.
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend(src_port.to_be_bytes());
    out.extend(dst_port.to_be_bytes());
    out.extend(len.to_be_bytes());
    out.extend([0, 0]);
    out.extend(payload);
    out
}

/// The Internet checksum (RFC 1071) over `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet carrying a UDP datagram, header checksum filled in.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let datagram = udp(40000, dst_port, payload);
    let total = u16::try_from(20 + datagram.len()).unwrap_or(u16::MAX);
    let mut h = vec![0x45, 0];
    h.extend(total.to_be_bytes());
    h.extend([0, 0, 0x40, 0, 64, 17, 0, 0]);
    h.extend(src.octets());
    h.extend(dst.octets());
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend(datagram);
    h
}

/// A QUIC v1 Initial long header (RFC 9000 17.2.2) whose payload carries
/// `marker`: what a QUIC client's first datagram to port 443 looks like.
pub fn quic_initial(marker: &[u8]) -> Vec<u8> {
    let mut p = vec![0xc0];
    p.extend(1u32.to_be_bytes());
    p.push(8);
    p.extend(*b"cordondr");
    p.push(0); // source connection id length
    p.push(0); // token length
    let len = 1 + marker.len();
    // Two-byte variable-length integer (prefix 01).
    p.extend((0x4000u16 | u16::try_from(len).unwrap_or(0x3fff)).to_be_bytes());
    p.push(0); // packet number
    p.extend(marker);
    p
}

/// A recursive A query for `name`.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend(id.to_be_bytes());
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        q.extend(label.as_bytes().iter().take(63));
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}

/// The same query framed for DNS over TCP (two-byte length prefix).
pub fn dns_query_tcp(id: u16, name: &str) -> Vec<u8> {
    let q = dns_query(id, name);
    let mut out = u16::try_from(q.len()).unwrap_or(0).to_be_bytes().to_vec();
    out.extend(q);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv4_header_checksum_verifies() {
        let p = ipv4_udp(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            9998,
            b"m",
        );
        // A header with its checksum in place sums to zero.
        assert_eq!(checksum(&p[..20]), 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 20 + 8 + 1);
        assert_eq!(&p[16..20], &[192, 0, 2, 2]);
        assert_eq!(u16::from_be_bytes([p[22], p[23]]), 9998);
        assert_eq!(p.last(), Some(&b'm'));
    }

    #[test]
    fn a_known_header_has_the_known_checksum() {
        // The RFC 1071 worked example's words.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn the_quic_initial_is_a_v1_long_header_with_the_marker() {
        let p = quic_initial(b"MARK");
        assert_eq!(p[0] & 0xf0, 0xc0);
        assert_eq!(&p[1..5], &[0, 0, 0, 1]);
        assert!(p.ends_with(b"MARK"));
    }

    #[test]
    fn a_dns_query_carries_each_label_and_the_tcp_form_is_framed() {
        let q = dns_query(7, "abc.doctor.test");
        assert_eq!(&q[12..16], b"\x03abc");
        assert!(q.ends_with(&[4, b't', b'e', b's', b't', 0, 0, 1, 0, 1]));
        let t = dns_query_tcp(7, "abc.doctor.test");
        assert_eq!(usize::from(u16::from_be_bytes([t[0], t[1]])), q.len());
    }
}
