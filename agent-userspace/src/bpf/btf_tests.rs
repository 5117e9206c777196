use super::*;

/// Builds a little-endian BTF blob from raw type records.
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            types: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    fn words(&mut self, w: &[u32]) -> u32 {
        for x in w {
            self.types.extend_from_slice(&x.to_le_bytes());
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn int(&mut self, name: &str, size: u32) -> u32 {
        let n = self.s(name);
        self.words(&[n, 1 << 24, size, size * 8])
    }

    fn ptr(&mut self, to: u32) -> u32 {
        self.words(&[0, 2 << 24, to])
    }

    /// kind 4 (struct) or 5 (union); members are (name, type, bit offset).
    fn compound(&mut self, kind: u32, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let n = self.s(name);
        let mut w = vec![n, (kind << 24) | members.len() as u32, size];
        for (mname, ty, bits) in members {
            let mn = self.s(mname);
            w.extend_from_slice(&[mn, *ty, *bits]);
        }
        self.words(&w)
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        let tl = self.types.len() as u32;
        for w in [24u32, 0, tl, tl, self.strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

fn sample() -> Btf {
    let mut b = Builder::new();
    let uint = b.int("unsigned int", 4);
    let vp = b.ptr(0);
    let path = b.compound(STRUCT, "path", 16, &[("mnt", vp, 0), ("dentry", vp, 64)]);
    let cnst = b.words(&[0, 10 << 24, path]); // const struct path
    let un = b.compound(UNION, "", 16, &[("f_path", cnst, 0), ("__f_path", path, 0)]);
    b.compound(
        STRUCT,
        "file",
        48,
        &[("f_mode", uint, 0), ("f_flags", uint, 32), ("", un, 128)],
    );
    Btf::parse(&b.finish()).unwrap()
}

#[test]
fn finds_members_through_anonymous_unions_and_qualifiers() {
    let btf = sample();
    assert_eq!(btf.member_offset("file", "f_flags", 4).unwrap(), 4);
    assert_eq!(btf.member_offset("file", "f_path", 16).unwrap(), 16);
}

#[test]
fn a_field_of_the_wrong_size_or_missing_is_refused() {
    let btf = sample();
    assert!(matches!(
        btf.member_offset("file", "f_flags", 8),
        Err(BtfError::Size {
            got: 4,
            want: 8,
            ..
        })
    ));
    assert!(matches!(
        btf.member_offset("file", "f_nope", 4),
        Err(BtfError::NoMember { .. })
    ));
    assert!(matches!(
        btf.member_offset("inode", "i_mode", 2),
        Err(BtfError::NoStruct(_))
    ));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    assert!(Btf::parse(b"not btf at all, not at all").is_err());
    let mut blob = Builder::new();
    blob.int("int", 4);
    let mut bytes = blob.finish();
    bytes.truncate(bytes.len() - 6);
    assert!(Btf::parse(&bytes).is_err());
}

/// The real thing: readable without root wherever the kernel has BTF.
#[test]
fn running_kernel_offsets_match_the_kernel_layout() {
    let path = Path::new(VMLINUX);
    if !path.exists() {
        eprintln!("!! {VMLINUX} missing: this kernel has no BTF; containment cannot load here");
        return;
    }
    let btf = Btf::from_file(path).unwrap();
    let o = btf.kernel_offsets().unwrap();
    // Layout facts stable for years: msg_name opens struct msghdr and
    // msg_namelen follows it; the socket's sk is pointer-aligned.
    assert_eq!(o.msghdr_msg_name, 0);
    assert_eq!(o.msghdr_msg_namelen, 8);
    assert_eq!(o.socket_sk % 8, 0);
    assert_eq!(o.file_f_path % 8, 0);
    assert!(o.task_tgid > 0 && o.file_f_flags > 0);
    // struct bpf_sock_addr_kern { sk; uaddr; tmp_reg; t_ctx; uaddrlen }
    // since 6.7; uaddr has followed sk since the struct's first version.
    let u = btf.sock_addr_offsets().unwrap();
    assert_eq!(u.uaddr, 8);
    assert!(u.uaddrlen > u.uaddr && u.uaddrlen.is_multiple_of(4));
}
