//! Cordon's kernel side. Every program is attached once, at the Cordon
//! parent cgroup, and inherited by every agent cgroup below it.
//!
//! - connect4/6: TCP connects go to the proxy; UDP connects only to port 53,
//!   rewritten to the resolver. The original destination is kept by socket
//!   cookie so the daemon can recover it.
//! - sock_ops: re-keys that record by the client's local port once it is
//!   known, which is what the proxy sees as the peer port on accept.
//! - sendmsg4/6 + recvmsg4/6: unconnected UDP to port 53 goes to the
//!   resolver and its answers appear to come from the server the agent asked.
//! - sock_create: only plain TCP and UDP sockets may be created.
//! - cgroup_skb/egress: drops anything not addressed to Cordon (defence in
//!   depth against a hook being bypassed) and attributes DNS datagrams.
//!
//! Every program checks the kill map first: a killed agent gets EPERM.
#![no_std]
#![no_main]

mod addr;
mod contain;
mod device;
mod kernel;
mod maps;
mod observe;
mod unix;

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use agent_common::{AF_INET, AF_INET6, OrigDst, PortKey};
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_get_socket_cookie,
    },
    macros::{cgroup_skb, cgroup_sock, cgroup_sock_addr, sock_ops},
    programs::{SkBuffContext, SockAddrContext, SockContext, SockOpsContext},
};

use crate::{
    addr::{LOOPBACK4, LOOPBACK6, ip6_bytes, is_loopback4, is_loopback6, port_be},
    maps::{CONFIG, DNS_CLIENTS, KILLED, TCP_BY_COOKIE, TCP_BY_PORT, UDP_BY_COOKIE},
};

const ALLOW: i32 = 1;
const DENY: i32 = 0;

const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const DNS_PORT: u16 = 53;

const BPF_SOCK_OPS_TCP_CONNECT_CB: u32 = 3;
const BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: u32 = 4;

/// Is the calling task's cgroup, or any ancestor below the Cordon parent,
/// marked killed?
#[inline(always)]
fn current_killed(parent_level: u32) -> bool {
    let mut i = 1;
    while i <= agent_common::MAX_KILL_DEPTH {
        // SAFETY: BPF helper, no memory arguments.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id((parent_level + i) as i32) };
        if id == 0 {
            return false;
        }
        // SAFETY: read-only lookup of a plain u32 value.
        if unsafe { KILLED.get(&id) }.is_some() {
            return true;
        }
        i += 1;
    }
    false
}

#[inline(always)]
fn identity(family: u16, addr: [u8; 16], port: u16) -> OrigDst {
    // SAFETY: BPF helpers without memory arguments.
    let (cgroup_id, pid_tgid, uid_gid) = unsafe {
        (
            bpf_get_current_cgroup_id(),
            bpf_get_current_pid_tgid(),
            bpf_get_current_uid_gid(),
        )
    };
    OrigDst {
        cgroup_id,
        addr,
        pid: (pid_tgid >> 32) as u32,
        uid: uid_gid as u32,
        port,
        family,
        _pad: 0,
    }
}

/// Shared body of the four address hooks that redirect: connect4/6 and
/// sendmsg4/6. `is_connect` distinguishes TCP connects (to the proxy) from
/// datagrams (to the resolver).
#[inline(always)]
fn redirect(ctx: &SockAddrContext, v6: bool, is_connect: bool) -> i32 {
    let Some(cfg) = CONFIG.get(0) else {
        return DENY;
    };
    if current_killed(cfg.parent_level) {
        return DENY;
    }
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa = unsafe { &*ctx.sock_addr };
    let port = u16::from_be(sa.user_port as u16);
    let (family, addr) = if v6 {
        (AF_INET6, ip6_bytes(&read_ip6(ctx.sock_addr)))
    } else {
        let mut a = [0u8; 16];
        let b = sa.user_ip4.to_ne_bytes();
        a[0] = b[0];
        a[1] = b[1];
        a[2] = b[2];
        a[3] = b[3];
        (AF_INET, a)
    };
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };

    let is_tcp = sa.type_ == SOCK_STREAM && (sa.protocol == IPPROTO_TCP || sa.protocol == 0);
    let is_udp = sa.type_ == SOCK_DGRAM && (sa.protocol == IPPROTO_UDP || sa.protocol == 0);

    if is_connect && is_tcp {
        if cfg.proxy_port == 0 {
            return DENY;
        }
        let orig = identity(family, addr, port);
        if TCP_BY_COOKIE.insert(&cookie, &orig, 0).is_err() {
            return DENY;
        }
        set_dest(ctx.sock_addr, v6, cfg.proxy_port);
        return ALLOW;
    }
    if is_udp {
        // An answer from our own resolver address is not a new destination:
        // the socket already talks to Cordon.
        let to_resolver = port == cfg.dns_port
            && if v6 {
                is_loopback6(&read_ip6(ctx.sock_addr))
            } else {
                is_loopback4(sa.user_ip4)
            };
        if to_resolver {
            return ALLOW;
        }
        if port != DNS_PORT || cfg.dns_port == 0 {
            return DENY;
        }
        let orig = identity(family, addr, port);
        if UDP_BY_COOKIE.insert(&cookie, &orig, 0).is_err() {
            return DENY;
        }
        set_dest(ctx.sock_addr, v6, cfg.dns_port);
        return ALLOW;
    }
    DENY
}

/// Reads the IPv6 address words one constant-offset load at a time (see
/// `write_ip6`).
#[inline(always)]
fn read_ip6(sa: *const aya_ebpf::bindings::bpf_sock_addr) -> [u32; 4] {
    // SAFETY: `sa` is the program's context pointer.
    unsafe {
        [
            read_volatile(addr_of!((*sa).user_ip6[0])),
            read_volatile(addr_of!((*sa).user_ip6[1])),
            read_volatile(addr_of!((*sa).user_ip6[2])),
            read_volatile(addr_of!((*sa).user_ip6[3])),
        ]
    }
}

/// The verifier only accepts context stores at a constant offset from the
/// context pointer itself, so every field is written through its own
/// volatile store (LLVM would otherwise keep a derived pointer around).
#[inline(always)]
fn write_ip6(sa: *mut aya_ebpf::bindings::bpf_sock_addr, w: [u32; 4]) {
    // SAFETY: `sa` is the program's context pointer.
    unsafe {
        write_volatile(addr_of_mut!((*sa).user_ip6[0]), w[0]);
        write_volatile(addr_of_mut!((*sa).user_ip6[1]), w[1]);
        write_volatile(addr_of_mut!((*sa).user_ip6[2]), w[2]);
        write_volatile(addr_of_mut!((*sa).user_ip6[3]), w[3]);
    }
}

#[inline(always)]
fn write_ip4_port(sa: *mut aya_ebpf::bindings::bpf_sock_addr, ip4: Option<u32>, port: u16) {
    // SAFETY: `sa` is the program's context pointer.
    unsafe {
        if let Some(ip) = ip4 {
            write_volatile(addr_of_mut!((*sa).user_ip4), ip);
        }
        write_volatile(addr_of_mut!((*sa).user_port), port_be(port));
    }
}

#[inline(always)]
fn set_dest(sa: *mut aya_ebpf::bindings::bpf_sock_addr, v6: bool, port: u16) {
    if v6 {
        write_ip6(sa, LOOPBACK6);
        write_ip4_port(sa, None, port);
    } else {
        write_ip4_port(sa, Some(LOOPBACK4), port);
    }
}

#[cgroup_sock_addr(connect4)]
pub fn cordon_connect4(ctx: SockAddrContext) -> i32 {
    redirect(&ctx, false, true)
}

#[cgroup_sock_addr(connect6)]
pub fn cordon_connect6(ctx: SockAddrContext) -> i32 {
    redirect(&ctx, true, true)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn cordon_sendmsg4(ctx: SockAddrContext) -> i32 {
    redirect(&ctx, false, false)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn cordon_sendmsg6(ctx: SockAddrContext) -> i32 {
    redirect(&ctx, true, false)
}

/// Answers from the resolver are shown as coming from the server the agent
/// addressed, so resolvers that check the source (glibc does) accept them.
#[inline(always)]
fn restore_source(ctx: &SockAddrContext, v6: bool) -> i32 {
    let Some(cfg) = CONFIG.get(0) else {
        return ALLOW;
    };
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sa = unsafe { &*ctx.sock_addr };
    if u16::from_be(sa.user_port as u16) != cfg.dns_port {
        return ALLOW;
    }
    let from_resolver = if v6 {
        is_loopback6(&read_ip6(ctx.sock_addr))
    } else {
        is_loopback4(sa.user_ip4)
    };
    if !from_resolver {
        return ALLOW;
    }
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: read-only lookup; the value is copied out immediately.
    if let Some(orig) = unsafe { UDP_BY_COOKIE.get(&cookie) } {
        if v6 && orig.family == AF_INET6 {
            write_ip6(ctx.sock_addr, addr::ip6_words(&orig.addr));
            write_ip4_port(ctx.sock_addr, None, orig.port);
        } else if !v6 && orig.family == AF_INET {
            let ip = u32::from_ne_bytes([orig.addr[0], orig.addr[1], orig.addr[2], orig.addr[3]]);
            write_ip4_port(ctx.sock_addr, Some(ip), orig.port);
        }
    }
    ALLOW
}

#[cgroup_sock_addr(recvmsg4)]
pub fn cordon_recvmsg4(ctx: SockAddrContext) -> i32 {
    restore_source(&ctx, false)
}

#[cgroup_sock_addr(recvmsg6)]
pub fn cordon_recvmsg6(ctx: SockAddrContext) -> i32 {
    restore_source(&ctx, true)
}

/// Moves the connect record from the socket cookie (all connect4/6 knows)
/// to the client's local port (all the proxy knows after accept). Runs
/// before the SYN leaves, so the record exists before the proxy can accept.
#[sock_ops]
pub fn cordon_rekey(ctx: SockOpsContext) -> u32 {
    let op = ctx.op();
    if op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB {
        return 1;
    }
    // SAFETY: bpf_get_socket_cookie accepts a sock_ops context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: the value is copied before the entry is removed.
    let Some(orig) = (unsafe { TCP_BY_COOKIE.get(&cookie) }).copied() else {
        return 1;
    };
    let family = if ctx.family() == AF_INET6 as u32 {
        AF_INET6
    } else {
        AF_INET
    };
    let key = PortKey {
        family,
        port: ctx.local_port() as u16,
    };
    if TCP_BY_PORT.insert(&key, &orig, 0).is_ok() {
        let _ = TCP_BY_COOKIE.remove(&cookie);
    }
    1
}

/// Only plain TCP and UDP may be created among inet sockets: raw, ICMP,
/// SCTP and MPTCP are refused. The kernel runs this hook for AF_INET and
/// AF_INET6 only; packet sockets are kept from agents by `cordon run`,
/// which removes CAP_NET_RAW even from agents allowed to run as root.
#[cgroup_sock(sock_create)]
pub fn cordon_sock_create(ctx: SockContext) -> i32 {
    let Some(cfg) = CONFIG.get(0) else {
        return DENY;
    };
    if current_killed(cfg.parent_level) {
        return DENY;
    }
    // SAFETY: the context pointer is valid for the program's lifetime.
    let sk = unsafe { &*ctx.sock };
    let family = sk.family;
    if family == AF_INET as u32 || family == AF_INET6 as u32 {
        let tcp = sk.type_ == SOCK_STREAM && (sk.protocol == 0 || sk.protocol == IPPROTO_TCP);
        let udp = sk.type_ == SOCK_DGRAM && (sk.protocol == 0 || sk.protocol == IPPROTO_UDP);
        return if tcp || udp { ALLOW } else { DENY };
    }
    ALLOW
}

/// Last line: a packet leaving an agent cgroup must be addressed to the
/// proxy or the resolver on loopback. Everything else is dropped.
#[cgroup_skb(egress)]
pub fn cordon_egress(ctx: SkBuffContext) -> i32 {
    egress(&ctx).unwrap_or(DENY)
}

/// Bytes of header the fast path reads in place: an IPv6 header and the two
/// ports, or an IPv4 header without options and the two ports.
const HEADERS: usize = 44;

/// Every packet an agent sends passes this hook. When its headers are in the
/// linear data (nearly always: the stack builds them there), they are read in
/// place; a `bpf_skb_load_bytes` call per field made the hook about three
/// times as slow. Anything else takes the helper path below.
#[inline(always)]
fn egress(ctx: &SkBuffContext) -> Option<i32> {
    let cfg = CONFIG.get(0)?;
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + HEADERS > end {
        return egress_loaded(ctx, cfg);
    }
    let at = |off: usize| start + off;
    // SAFETY (every read below): constant offsets inside [data, data + HEADERS),
    // checked above (and by the verifier); packet fields are unaligned.
    let first: u8 = unsafe { core::ptr::read_unaligned(at(0) as *const u8) };
    let (v6, proto) = match first >> 4 {
        4 if first & 0x0f == 5 => {
            let dst: [u8; 4] = unsafe { core::ptr::read_unaligned(at(16) as *const [u8; 4]) };
            if dst[0] != 127 {
                return Some(DENY);
            }
            (false, unsafe {
                core::ptr::read_unaligned(at(9) as *const u8)
            })
        }
        4 => return egress_loaded(ctx, cfg),
        6 => {
            let dst: [u8; 16] = unsafe { core::ptr::read_unaligned(at(24) as *const [u8; 16]) };
            if dst != addr::LOOPBACK6_BYTES {
                return Some(DENY);
            }
            (true, unsafe {
                core::ptr::read_unaligned(at(6) as *const u8)
            })
        }
        _ => return Some(DENY),
    };
    let (sport, dport) = if v6 {
        unsafe {
            (
                core::ptr::read_unaligned(at(40) as *const u16),
                core::ptr::read_unaligned(at(42) as *const u16),
            )
        }
    } else {
        unsafe {
            (
                core::ptr::read_unaligned(at(20) as *const u16),
                core::ptr::read_unaligned(at(22) as *const u16),
            )
        }
    };
    egress_decide(
        ctx,
        cfg,
        v6,
        proto,
        u16::from_be(sport),
        u16::from_be(dport),
    )
}

/// The same checks with every field read through `bpf_skb_load_bytes`.
#[inline(always)]
fn egress_loaded(ctx: &SkBuffContext, cfg: &agent_common::ProxyConfig) -> Option<i32> {
    let first: u8 = ctx.load(0).ok()?;
    let (v6, proto, l4) = match first >> 4 {
        4 => {
            let proto: u8 = ctx.load(9).ok()?;
            let dst: [u8; 4] = ctx.load(16).ok()?;
            if dst[0] != 127 {
                return Some(DENY);
            }
            (false, proto, ((first & 0x0f) as usize) * 4)
        }
        6 => {
            let proto: u8 = ctx.load(6).ok()?;
            let dst: [u8; 16] = ctx.load(24).ok()?;
            if dst != addr::LOOPBACK6_BYTES {
                return Some(DENY);
            }
            (true, proto, 40)
        }
        _ => return Some(DENY),
    };
    let sport = u16::from_be(ctx.load::<u16>(l4).ok()?);
    let dport = u16::from_be(ctx.load::<u16>(l4 + 2).ok()?);
    egress_decide(ctx, cfg, v6, proto, sport, dport)
}

/// Whether a packet to `dport` may leave: TCP to the proxy, UDP to the
/// resolver (recording who sent it).
#[inline(always)]
fn egress_decide(
    ctx: &SkBuffContext,
    cfg: &agent_common::ProxyConfig,
    v6: bool,
    proto: u8,
    sport: u16,
    dport: u16,
) -> Option<i32> {
    match proto as u32 {
        IPPROTO_TCP if dport == cfg.proxy_port && cfg.proxy_port != 0 => Some(ALLOW),
        IPPROTO_UDP if dport == cfg.dns_port && cfg.dns_port != 0 => {
            // The resolver learns who asked from this record: the datagram's
            // source port is all it sees.
            // SAFETY: bpf_get_socket_cookie accepts an skb context.
            let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
            // SAFETY: read-only lookup; the value is copied out.
            let mut rec = unsafe { UDP_BY_COOKIE.get(&cookie) }
                .copied()
                .unwrap_or_default();
            // SAFETY: BPF helper taking the skb context.
            rec.cgroup_id = unsafe { aya_ebpf::helpers::bpf_skb_cgroup_id(ctx.as_ptr().cast()) };
            let key = PortKey {
                family: if v6 { AF_INET6 } else { AF_INET },
                port: sport,
            };
            DNS_CLIENTS.insert(&key, &rec, 0).ok()?;
            Some(ALLOW)
        }
        _ => Some(DENY),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
