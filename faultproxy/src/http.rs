//! Framing of HTTP/1.1 requests as the AWS SDK sends them: a head, then a body of
//! `Content-Length` bytes. Enough to know where each request ends and which DynamoDB
//! operation it is (`X-Amz-Target: DynamoDB_20120810.TransactWriteItems`).

/// A complete request head found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes of the head, up to and including the blank line.
    pub len: usize,
    /// Body bytes that follow the head.
    pub body: usize,
    /// The operation named by `X-Amz-Target` (after its last `.`), if any.
    pub op: Option<String>,
}

/// What the buffer starts with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A full head.
    Head(Head),
    /// Not all of the head has arrived yet.
    Partial,
    /// Not a request this module can frame (chunked body, bad syntax): forward raw.
    Opaque,
}

/// Most headers a request may have before it counts as opaque.
const MAX_HEADERS: usize = 64;

pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Opaque,
    };
    let mut body = 0;
    let mut op = None;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => body = n,
                Err(_) => return Parsed::Opaque,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Opaque;
        } else if h.name.eq_ignore_ascii_case("x-amz-target") {
            op = value.rsplit('.').next().map(str::to_string);
        }
    }
    Parsed::Head(Head { len, body, op })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamodb_request_is_framed_and_named() {
        let req = b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.TransactWriteItems\r\ncontent-length: 2\r\n\r\n{}";
        let head_len = req.len() - 2;
        assert_eq!(
            parse(req),
            Parsed::Head(Head {
                len: head_len,
                body: 2,
                op: Some("TransactWriteItems".into())
            })
        );
    }

    #[test]
    fn half_a_head_waits_and_chunked_bodies_are_opaque() {
        assert_eq!(parse(b"POST / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial);
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Opaque
        );
        assert_eq!(parse(b"\x00\x01garbage\r\n\r\n"), Parsed::Opaque);
    }
}
