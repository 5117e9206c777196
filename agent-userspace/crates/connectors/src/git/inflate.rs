//! Inflating one zlib stream of a pack entry, whose compressed length the pack does not state:
//! the stream's own end says where the next entry starts.

use super::pack::PackStop;
use flate2::{Decompress, FlushDecompress, Status};

/// Inflate the stream at the start of `input`, which must produce exactly `size` bytes. Return
/// the bytes (when `keep`) and how much input the stream used. `inflated` counts the bytes
/// produced across calls; past `budget` the pack is not read further.
pub(crate) fn inflate(
    input: &[u8],
    size: usize,
    keep: bool,
    inflated: &mut usize,
    budget: usize,
) -> Result<(Option<Vec<u8>>, usize), PackStop> {
    let mut z = Decompress::new(true);
    let mut scratch = vec![0u8; 32 * 1024];
    let mut kept = keep.then(|| Vec::with_capacity(size));
    loop {
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let rest = input.get(in_before as usize..).ok_or(PackStop::Corrupt)?;
        let status = z
            .decompress(rest, &mut scratch, FlushDecompress::None)
            .map_err(|_| PackStop::Corrupt)?;
        let produced = (z.total_out() - out_before) as usize;
        *inflated += produced;
        if *inflated > budget {
            return Err(PackStop::LimitReached);
        }
        if z.total_out() as usize > size {
            return Err(PackStop::Corrupt);
        }
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(&scratch[..produced]);
        }
        match status {
            Status::StreamEnd => break,
            // No progress either way: the input ends inside the stream.
            _ if z.total_in() == in_before && produced == 0 => {
                return Err(PackStop::Truncated);
            }
            _ => {}
        }
    }
    if z.total_out() as usize != size {
        return Err(PackStop::Corrupt);
    }
    Ok((kept, z.total_in() as usize))
}
