//! Reading a request body within a limit, and undoing its `Content-Encoding`.
//!
//! The limit applies twice: to the bytes on the wire (checked against
//! `Content-Length` before reading, and while reading a chunked body) and to
//! the decompressed bytes, so a small compressed bomb is refused as soon as
//! it inflates past the limit instead of after. Relay accepts `gzip`,
//! `deflate` (zlib, or raw deflate as some clients send) and `br`; so do we.
//!
//! Every body also draws on the process's memory budget
//! (`limits.max_inflight_bytes`, counted in KiB permits of a semaphore) for
//! as long as the handler holds the returned [`BodyPermit`]: until its
//! delivery is committed. A body that does not fit is refused at once with
//! 503 and `Retry-After`, the way Relay sheds load when memory runs short.

use std::io::Read;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::IngestError;

/// The share of the memory budget a body holds; released on drop.
#[derive(Debug)]
pub struct BodyPermit(Option<OwnedSemaphorePermit>);

/// Permits (KiB) for `bytes`, at least one.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

impl BodyPermit {
    /// Grows the permit to cover `bytes` from `budget`, or refuses.
    fn cover(&mut self, budget: &Arc<Semaphore>, bytes: usize) -> Result<(), IngestError> {
        let held = self
            .0
            .as_ref()
            .map_or(0, |permit| permit.num_permits() as u32);
        let wanted = kib(bytes);
        if wanted <= held {
            return Ok(());
        }
        let more = budget
            .clone()
            .try_acquire_many_owned(wanted - held)
            .map_err(|_| IngestError::OverBudget)?;
        match &mut self.0 {
            Some(permit) => permit.merge(more),
            None => self.0 = Some(more),
        }
        Ok(())
    }
}

/// Reads `body` (at most `limit` bytes) and decodes it per `headers`'
/// `Content-Encoding` (at most `limit` bytes once decoded), holding its size
/// from `budget` in the returned permit.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Vec<u8>, BodyPermit), IngestError> {
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(IngestError::TooLarge { limit });
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut permit = BodyPermit(None);
    permit.cover(budget, declared)?;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        if is_length_limit(&error) {
            IngestError::TooLarge { limit }
        } else {
            IngestError::BodyRead(error)
        }
    })?;
    let encodings = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|encoding| encoding.trim().to_ascii_lowercase())
        .filter(|encoding| !encoding.is_empty() && encoding != "identity")
        .collect::<Vec<_>>();
    permit.cover(budget, bytes.len())?;
    let mut data = bytes.to_vec();
    // Encodings are listed in the order they were applied: undo the last first.
    for encoding in encodings.iter().rev() {
        data = decode(encoding, &data, limit)?;
        permit.cover(budget, bytes.len() + data.len())?;
    }
    Ok((data, permit))
}

/// Decodes one layer of `encoding`, refusing output past `limit`.
pub fn decode(encoding: &str, data: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    match encoding {
        "gzip" | "x-gzip" => read_limited(flate2::read::MultiGzDecoder::new(data), limit, "gzip"),
        "deflate" => read_limited(flate2::read::ZlibDecoder::new(data), limit, "deflate")
            .or_else(|_| read_limited(flate2::read::DeflateDecoder::new(data), limit, "deflate")),
        "br" => read_limited(brotli::Decompressor::new(data, 4096), limit, "br"),
        other => Err(IngestError::UnsupportedEncoding(other.to_owned())),
    }
}

fn read_limited(
    reader: impl Read,
    limit: usize,
    encoding: &'static str,
) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| IngestError::BadCompression { encoding, source })?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(out)
}

/// Whether reading failed because the body passed the limit.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.to_string().contains("length limit exceeded") {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            writer.write_all(data).unwrap();
        }
        out
    }

    /// Every accepted encoding round-trips.
    #[test]
    fn encodings() {
        let data = b"{\"event_id\":\"x\"}".repeat(10);
        assert_eq!(decode("gzip", &gzip(&data), 1000).unwrap(), data);
        assert_eq!(decode("deflate", &zlib(&data), 1000).unwrap(), data);
        assert_eq!(decode("deflate", &raw_deflate(&data), 1000).unwrap(), data);
        assert_eq!(decode("br", &brotli(&data), 1000).unwrap(), data);
    }

    /// A bomb is refused once it inflates past the limit.
    #[test]
    fn inflating_past_the_limit_is_too_large() {
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            decode("gzip", &bomb, 1000),
            Err(IngestError::TooLarge { limit: 1000 })
        ));
    }

    /// Garbage and unknown encodings say what is wrong.
    #[test]
    fn bad_input() {
        assert!(matches!(
            decode("gzip", b"nope", 100),
            Err(IngestError::BadCompression {
                encoding: "gzip",
                ..
            })
        ));
        assert!(matches!(
            decode("br", b"\xff\xff\xff", 100),
            Err(IngestError::BadCompression { encoding: "br", .. })
        ));
        assert!(
            matches!(decode("zstd", b"", 100), Err(IngestError::UnsupportedEncoding(e)) if e == "zstd")
        );
    }
}
