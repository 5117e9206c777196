//! Address helpers. The kernel hands sock_addr programs addresses and ports
//! in network byte order inside native-endian u32 words.

pub const LOOPBACK4: u32 = u32::from_ne_bytes([127, 0, 0, 1]);
pub const LOOPBACK6: [u32; 4] = [0, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])];
pub const LOOPBACK6_BYTES: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

#[inline(always)]
pub fn port_be(port: u16) -> u32 {
    port.to_be() as u32
}

#[inline(always)]
pub fn is_loopback4(ip: u32) -> bool {
    ip.to_ne_bytes()[0] == 127
}

#[inline(always)]
pub fn is_loopback6(ip: &[u32; 4]) -> bool {
    ip[0] == LOOPBACK6[0] && ip[1] == LOOPBACK6[1] && ip[2] == LOOPBACK6[2] && ip[3] == LOOPBACK6[3]
}

#[inline(always)]
pub fn ip6_bytes(w: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = w[i].to_ne_bytes();
        out[i * 4] = b[0];
        out[i * 4 + 1] = b[1];
        out[i * 4 + 2] = b[2];
        out[i * 4 + 3] = b[3];
        i += 1;
    }
    out
}

#[inline(always)]
pub fn ip6_words(b: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
    ]
}
