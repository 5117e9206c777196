//! Kernel struct field offsets from the running kernel's BTF
//! (/sys/kernel/btf/vmlinux), for the containment programs.
//!
//! A small parser on purpose: all it needs is struct members (through
//! anonymous unions and structs, where `file.f_path` lives since 6.12),
//! and aya's parser does not expose them. Every offset is also checked
//! against the size its field must have, so a renamed or retyped field
//! fails the load instead of steering the programs at the wrong bytes.
use std::path::{Path, PathBuf};

use agent_common::{KernelOffsets, SockAddrOffsets};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {strukt}.{member} is {got} bytes, expected {want}")]
    Size {
        strukt: String,
        member: String,
        got: u32,
        want: u32,
    },
    #[error("kernel BTF: {strukt}.{member} is a bitfield")]
    Bitfield { strukt: String, member: String },
}

const MAGIC: u16 = 0xeb9f;
const STRUCT: u32 = 4;
const UNION: u32 = 5;

/// One parsed type: kind, name, size-or-type, and where its trailing
/// records start in the type section.
#[derive(Clone, Copy)]
struct Ty {
    kind: u32,
    name: u32,
    vlen: u32,
    kflag: bool,
    size_or_type: u32,
    extra: usize,
}

pub struct Btf {
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Index 0 is `void`.
    index: Vec<Ty>,
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, BtfError> {
    let s = b
        .get(off..off + 4)
        .ok_or(BtfError::Malformed("truncated"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.into(),
            source,
        })?;
        Btf::parse(&data)
    }

    /// Little-endian BTF only: the programs are built for bpfel.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::Malformed("bad magic"));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let section = |off_at: usize| -> Result<&[u8], BtfError> {
            let off = hdr_len + u32_at(data, off_at)? as usize;
            let len = u32_at(data, off_at + 4)? as usize;
            data.get(off..off + len)
                .ok_or(BtfError::Malformed("section out of bounds"))
        };
        let types = section(8)?.to_vec();
        let strings = section(16)?.to_vec();
        let mut index = vec![Ty {
            kind: 0,
            name: 0,
            vlen: 0,
            kflag: false,
            size_or_type: 0,
            extra: 0,
        }];
        let mut off = 0;
        while off < types.len() {
            let info = u32_at(&types, off + 4)?;
            let ty = Ty {
                kind: (info >> 24) & 0x1f,
                name: u32_at(&types, off)?,
                vlen: info & 0xffff,
                kflag: info >> 31 == 1,
                size_or_type: u32_at(&types, off + 8)?,
                extra: off + 12,
            };
            let vlen = ty.vlen as usize;
            let tail = match ty.kind {
                1 | 14 | 17 => 4,                      // int, var, decl_tag
                3 => 12,                               // array
                STRUCT | UNION | 15 | 19 => 12 * vlen, // members, datasec, enum64
                6 | 13 => 8 * vlen,                    // enum, func_proto
                2 | 7..=12 | 16 | 18 => 0,
                _ => return Err(BtfError::Malformed("unknown kind")),
            };
            index.push(ty);
            off = ty.extra + tail;
        }
        Ok(Btf {
            types,
            strings,
            index,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn ty(&self, id: u32) -> Result<Ty, BtfError> {
        self.index
            .get(id as usize)
            .copied()
            .ok_or(BtfError::Malformed("type id out of range"))
    }

    /// Follows typedefs and qualifiers to the type that has a size.
    fn resolve(&self, mut id: u32) -> Result<Ty, BtfError> {
        for _ in 0..32 {
            let t = self.ty(id)?;
            match t.kind {
                8..=11 | 18 => id = t.size_or_type,
                _ => return Ok(t),
            }
        }
        Err(BtfError::Malformed("qualifier chain too long"))
    }

    fn size_of(&self, id: u32) -> Result<u32, BtfError> {
        let t = self.resolve(id)?;
        Ok(match t.kind {
            2 => 8, // pointers: the programs are 64-bit only
            3 => {
                let elem = u32_at(&self.types, t.extra)?;
                let n = u32_at(&self.types, t.extra + 8)?;
                self.size_of(elem)?.saturating_mul(n)
            }
            _ => t.size_or_type,
        })
    }

    /// Byte offset and size of `member`, searched through anonymous
    /// struct and union members.
    fn find(&self, t: Ty, member: &[u8], depth: u32) -> Result<Option<(u32, u32)>, BtfError> {
        if depth > 8 {
            return Ok(None);
        }
        for i in 0..t.vlen as usize {
            let m = t.extra + 12 * i;
            let (name, mtype, raw) = (
                u32_at(&self.types, m)?,
                u32_at(&self.types, m + 4)?,
                u32_at(&self.types, m + 8)?,
            );
            let bits = if t.kflag { raw & 0xff_ffff } else { raw };
            let bitfield = t.kflag && raw >> 24 != 0;
            if self.name(name) == member {
                if bitfield || bits % 8 != 0 {
                    return Err(BtfError::Malformed("bitfield"));
                }
                return Ok(Some((bits / 8, self.size_of(mtype)?)));
            }
            let inner = self.resolve(mtype)?;
            if name == 0
                && matches!(inner.kind, STRUCT | UNION)
                && let Some((off, size)) = self.find(inner, member, depth + 1)?
            {
                return Ok(Some((bits / 8 + off, size)));
            }
        }
        Ok(None)
    }

    /// Offset of `strukt.member`, which must be `want` bytes wide.
    pub fn member_offset(&self, strukt: &str, member: &str, want: u32) -> Result<u32, BtfError> {
        let t = self
            .index
            .iter()
            .find(|t| t.kind == STRUCT && t.vlen > 0 && self.name(t.name) == strukt.as_bytes())
            .copied()
            .ok_or_else(|| BtfError::NoStruct(strukt.into()))?;
        let (off, got) = match self.find(t, member.as_bytes(), 0) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(BtfError::NoMember {
                    strukt: strukt.into(),
                    member: member.into(),
                });
            }
            Err(BtfError::Malformed("bitfield")) => {
                return Err(BtfError::Bitfield {
                    strukt: strukt.into(),
                    member: member.into(),
                });
            }
            Err(e) => return Err(e),
        };
        if got != want {
            return Err(BtfError::Size {
                strukt: strukt.into(),
                member: member.into(),
                got,
                want,
            });
        }
        Ok(off)
    }

    /// Every offset the containment programs read.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            // struct path is two pointers (vfsmount, dentry).
            file_f_path: self.member_offset("file", "f_path", 16)?,
            file_f_flags: self.member_offset("file", "f_flags", 4)?,
            task_tgid: self.member_offset("task_struct", "tgid", 4)?,
            msghdr_msg_name: self.member_offset("msghdr", "msg_name", 8)?,
            msghdr_msg_namelen: self.member_offset("msghdr", "msg_namelen", 4)?,
            socket_sk: self.member_offset("socket", "sk", 8)?,
        })
    }

    /// Where a cgroup sock_addr program's real context (`struct
    /// bpf_sock_addr_kern`) keeps the address pointer and its length.
    pub fn sock_addr_offsets(&self) -> Result<SockAddrOffsets, BtfError> {
        Ok(SockAddrOffsets {
            uaddr: self.member_offset("bpf_sock_addr_kern", "uaddr", 8)?,
            uaddrlen: self.member_offset("bpf_sock_addr_kern", "uaddrlen", 4)?,
        })
    }
}

#[cfg(test)]
#[path = "btf_tests.rs"]
mod tests;
