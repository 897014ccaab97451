//! What an uploaded file really is: the image type read from its bytes (never from its name
//! or from the type the browser declared) and its size in pixels, which messages carry so a
//! page reserves the space before the image loads. Pure: no I/O.

use imagesize::ImageType;
use serde::{Deserialize, Serialize};

/// Largest image a person may share, in bytes (5 MiB).
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// Largest width or height accepted, in pixels: beyond it a browser's decoder would need
/// gigabytes for one small file.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// The image types a message may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    Webp,
}

impl ImageKind {
    pub const ALL: [ImageKind; 4] = [Self::Jpeg, Self::Png, Self::Gif, Self::Webp];

    /// The media type it is served with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// The file name extension of stored objects.
    pub fn ext(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.mime().eq_ignore_ascii_case(mime.trim()))
    }

    pub fn from_ext(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.ext() == ext)
    }
}

/// An image as its bytes describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

/// Why bytes are not an image a message may carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    #[error("the file is not a JPEG, PNG, GIF or WebP image")]
    NotAnImage,
    #[error("the file says it is {declared} but its bytes are {actual}")]
    Mismatch {
        declared: &'static str,
        actual: &'static str,
    },
    #[error("the image's size in pixels cannot be read (damaged or cut short?)")]
    NoDimensions,
    #[error("the image is {width}×{height} pixels; at most {MAX_IMAGE_SIDE} on a side")]
    TooManyPixels { width: u64, height: u64 },
}

/// Reads the type and pixel size from `bytes` (the whole file, or at least its header).
/// With `declared`, the bytes must be of that type.
pub fn sniff(bytes: &[u8], declared: Option<ImageKind>) -> Result<Sniffed, SniffError> {
    let kind = match imagesize::image_type(bytes) {
        Ok(ImageType::Jpeg) => ImageKind::Jpeg,
        Ok(ImageType::Png) => ImageKind::Png,
        Ok(ImageType::Gif) => ImageKind::Gif,
        Ok(ImageType::Webp) => ImageKind::Webp,
        _ => return Err(SniffError::NotAnImage),
    };
    if let Some(declared) = declared
        && declared != kind
    {
        return Err(SniffError::Mismatch {
            declared: declared.mime(),
            actual: kind.mime(),
        });
    }
    let size = imagesize::blob_size(bytes).map_err(|_| SniffError::NoDimensions)?;
    let (w, h) = (size.width as u64, size.height as u64);
    if w == 0 || h == 0 {
        return Err(SniffError::NoDimensions);
    }
    if w > u64::from(MAX_IMAGE_SIDE) || h > u64::from(MAX_IMAGE_SIDE) {
        return Err(SniffError::TooManyPixels {
            width: w,
            height: h,
        });
    }
    Ok(Sniffed {
        kind,
        width: w as u32,
        height: h as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 PNG header (signature + IHDR), enough for type and size.
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    fn gif(width: u16, height: u16) -> Vec<u8> {
        let mut b = b"GIF89a".to_vec();
        b.extend_from_slice(&width.to_le_bytes());
        b.extend_from_slice(&height.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0]);
        b
    }

    /// A baseline JPEG's start: SOI, an APP0 segment, then SOF0 with the size.
    fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        b.extend_from_slice(b"JFIF\0");
        b.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);
        b.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        b
    }

    /// A lossless WebP (RIFF/WEBP/VP8L) header.
    fn webp(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&100u32.to_le_bytes());
        b.extend_from_slice(b"WEBPVP8L");
        b.extend_from_slice(&20u32.to_le_bytes());
        b.push(0x2f);
        let bits = (width - 1) | ((height - 1) << 14);
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        b
    }

    #[test]
    fn the_four_types_and_their_sizes() {
        let cases = [
            (png(3, 2), ImageKind::Png, 3, 2),
            (gif(640, 480), ImageKind::Gif, 640, 480),
            (jpeg(1024, 768), ImageKind::Jpeg, 1024, 768),
            (webp(300, 200), ImageKind::Webp, 300, 200),
        ];
        for (bytes, kind, width, height) in cases {
            assert_eq!(
                sniff(&bytes, None),
                Ok(Sniffed {
                    kind,
                    width,
                    height
                }),
                "{kind:?}"
            );
            assert_eq!(sniff(&bytes, Some(kind)).map(|s| s.kind), Ok(kind));
        }
    }

    #[test]
    fn the_bytes_decide_not_the_declared_type() {
        assert_eq!(
            sniff(&gif(1, 1), Some(ImageKind::Png)),
            Err(SniffError::Mismatch {
                declared: "image/png",
                actual: "image/gif"
            })
        );
        for not_image in [
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            b"<html><script>alert(1)</script>".to_vec(),
            b"BM\x3a\0\0\0".to_vec(),
            Vec::new(),
        ] {
            assert_eq!(sniff(&not_image, None), Err(SniffError::NotAnImage));
        }
    }

    #[test]
    fn cut_short_and_oversized_images_are_refused() {
        assert_eq!(sniff(&png(3, 2)[..14], None), Err(SniffError::NoDimensions));
        assert_eq!(sniff(&png(0, 2), None), Err(SniffError::NoDimensions));
        assert_eq!(
            sniff(&png(MAX_IMAGE_SIDE + 1, 10), None),
            Err(SniffError::TooManyPixels {
                width: u64::from(MAX_IMAGE_SIDE) + 1,
                height: 10
            })
        );
        assert!(sniff(&png(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), None).is_ok());
    }

    #[test]
    fn media_types_and_extensions() {
        for k in ImageKind::ALL {
            assert_eq!(ImageKind::from_mime(k.mime()), Some(k));
            assert_eq!(ImageKind::from_ext(k.ext()), Some(k));
        }
        assert_eq!(ImageKind::from_mime("IMAGE/PNG"), Some(ImageKind::Png));
        assert_eq!(ImageKind::from_mime("image/svg+xml"), None);
    }
}
