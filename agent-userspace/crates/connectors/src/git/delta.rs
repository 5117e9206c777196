//! git's delta format: the base size and result size as little-endian base-128 varints, then
//! instructions that either copy a range of the base or insert literal bytes.

/// Why a delta could not be applied; the object it describes stays unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeltaError {
    Corrupt,
    BaseSizeMismatch,
    TooLarge,
}

/// Read a delta-header varint at `*pos`.
fn varint(delta: &[u8], pos: &mut usize) -> Result<usize, DeltaError> {
    let mut value: usize = 0;
    let mut shift = 0;
    loop {
        let byte = *delta.get(*pos).ok_or(DeltaError::Corrupt)?;
        *pos += 1;
        if shift > 56 {
            return Err(DeltaError::Corrupt);
        }
        value |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Rebuild an object from its base and a delta. The result may not exceed `max_out` bytes.
pub(crate) fn apply(base: &[u8], delta: &[u8], max_out: usize) -> Result<Vec<u8>, DeltaError> {
    let mut pos = 0;
    if varint(delta, &mut pos)? != base.len() {
        return Err(DeltaError::BaseSizeMismatch);
    }
    let result_len = varint(delta, &mut pos)?;
    if result_len > max_out {
        return Err(DeltaError::TooLarge);
    }
    let mut out = Vec::with_capacity(result_len);
    while pos < delta.len() {
        let op = delta[pos];
        pos += 1;
        if op & 0x80 != 0 {
            // Copy: bits 0-3 say which offset bytes follow, bits 4-6 which size bytes.
            let mut offset = 0usize;
            let mut size = 0usize;
            for i in 0..4 {
                if op & (1 << i) != 0 {
                    let b = *delta.get(pos).ok_or(DeltaError::Corrupt)?;
                    pos += 1;
                    offset |= usize::from(b) << (8 * i);
                }
            }
            for i in 0..3 {
                if op & (0x10 << i) != 0 {
                    let b = *delta.get(pos).ok_or(DeltaError::Corrupt)?;
                    pos += 1;
                    size |= usize::from(b) << (8 * i);
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = offset.checked_add(size).ok_or(DeltaError::Corrupt)?;
            let chunk = base.get(offset..end).ok_or(DeltaError::Corrupt)?;
            out.extend_from_slice(chunk);
        } else if op != 0 {
            let n = usize::from(op);
            let chunk = delta.get(pos..pos + n).ok_or(DeltaError::Corrupt)?;
            pos += n;
            out.extend_from_slice(chunk);
        } else {
            // Opcode 0 is reserved.
            return Err(DeltaError::Corrupt);
        }
        if out.len() > result_len {
            return Err(DeltaError::Corrupt);
        }
    }
    if out.len() != result_len {
        return Err(DeltaError::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_inserts_rebuild_the_target() {
        let base = b"tree abc\nparent 111\n\nhello";
        // base len 27, result len 30; copy 0..20, insert "parent 222\n", ... keep it simple:
        let mut d = vec![base.len() as u8, 16];
        d.push(0x80 | 0x01 | 0x10); // copy, one offset byte, one size byte
        d.push(0); // offset 0
        d.push(9); // size 9: "tree abc\n"
        d.push(7); // insert 7 bytes
        d.extend_from_slice(b"\nhello!");
        assert_eq!(apply(base, &d, 1024).unwrap(), b"tree abc\n\nhello!");
    }

    #[test]
    fn wrong_base_or_out_of_range_copies_fail() {
        let base = b"abcdef";
        assert_eq!(
            apply(base, &[5, 1, 1, b'x'], 10),
            Err(DeltaError::BaseSizeMismatch)
        );
        // copy offset 4 size 8 runs past the base
        assert_eq!(
            apply(base, &[6, 8, 0x80 | 0x01 | 0x10, 4, 8], 10),
            Err(DeltaError::Corrupt)
        );
        assert_eq!(apply(base, &[6, 3, 0], 10), Err(DeltaError::Corrupt));
        assert_eq!(
            apply(base, &[6, 100, 1, b'x'], 10),
            Err(DeltaError::TooLarge)
        );
        // declared result length not met
        assert_eq!(apply(base, &[6, 3, 1, b'x'], 10), Err(DeltaError::Corrupt));
    }
}
